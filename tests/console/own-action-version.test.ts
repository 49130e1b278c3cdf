/**
 * The console acts on the alert as its own last action left it (review 67): while its read of
 * the alert after an acknowledge was still on its way (a slow link: delayed here by 4 s), any
 * redraw (another alert arriving) re-enabled the buttons over the alert as it was before the
 * acknowledge; resolve then sent the old version, was refused 409 ALERT_CHANGED, and the console
 * said "another operator acted", though none had. The action's answer (the alert with its new
 * version) is now taken at once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { consolePage, launchChromium, type ConsolePage } from './browser.js'
import { ADMIN, startWard, type Ward } from './ward.js'

let ward: Ward
let browser: Browser
let page: ConsolePage

beforeAll(async () => {
  ward = await startWard('own-action-version')
  await ward.provision('btn-own-a', 'Cổng chợ A')
  await ward.provision('btn-own-b', 'Cổng chợ B')
  browser = await launchChromium()
}, 180_000)

afterAll(async () => {
  await page?.context().close().catch(() => {})
  await browser?.close()
  await ward?.close()
})

it('a resolve right after its own acknowledge, the read after it slow, is made on the acknowledged version and goes through', async () => {
  await ward.press('btn-own-a')
  page = await consolePage(browser)
  page.setDefaultTimeout(20_000)
  await page.addInitScript(() => localStorage.setItem('sos.lang', 'en'))
  await page.goto(`${ward.url}/#token=${ADMIN}`)
  await page.locator('[data-connection="live"]').waitFor()
  const shown = await ward.activeAlert('btn-own-a')
  await page.locator('.alert-card', { hasText: 'Cổng chợ A' }).locator('.card-button').click()
  await page.locator('.detail .device-name', { hasText: 'Cổng chợ A' }).waitFor()

  // From the acknowledge on, reads of this alert take 4 s (a slow or lossy link).
  await page.route(new RegExp(`/v1/alerts/${shown.id}$`), async (route) => {
    if (route.request().method() === 'GET') await new Promise((r) => setTimeout(r, 4000))
    await route.continue().catch(() => {})
  })
  const acked = page.waitForResponse(/\/acknowledge$/)
  await page.getByRole('button', { name: 'Acknowledge', exact: true }).click()
  expect((await acked).status()).toBe(200)
  // Another alert comes in meanwhile: the console redraws.
  await ward.press('btn-own-b')
  await page.locator('.alert-card', { hasText: 'Cổng chợ B' }).waitFor()

  let sent: any = null
  page.on('request', (r) => { if (r.url().endsWith('/resolve')) sent = r.postDataJSON() })
  const answered = page.waitForResponse(/\/resolve$/)
  await page.getByLabel('Outcome').selectOption('false_alarm')
  await page.getByRole('button', { name: 'Resolve', exact: true }).click()
  const response = await answered
  expect(sent).toMatchObject({ outcome: 'false_alarm', expectedVersion: shown.version + 1 })
  expect(response.status(), await response.text()).toBe(200)
  expect(await ward.ok('GET', `/v1/alerts/${shown.id}`)).toMatchObject({ state: 'resolved', outcome: 'false_alarm' })
}, 90_000)
