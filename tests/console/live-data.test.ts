/**
 * What the console shows must be what the server holds, in a real browser against the real
 * server, with one request faulted on its way (page.route) as a proxy's 502, a dropped or hung
 * connection, or two answers crossing would do. Before: a panic whose one read failed never
 * reached the list while the header said "live"; a reload after a reconnect that failed, or
 * one of whose requests hung, was never retried (and the hung one held back every later
 * change); an alert another desk resolved came back as a NEW panic when the read made before
 * its resolution landed last.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Route } from 'playwright-core'
import { consolePage, launchChromium, type ConsolePage } from './browser.js'
import { ADMIN, startWard, type Ward } from './ward.js'
import { SOUNDS } from './sounds.js'

/** One alert read by id (not the lists, not the actions). */
const ALERT_READ = /\/v1\/alerts\/[^/?]+$/
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('operator console: the live data is whole, or says it is not', { timeout: 90_000 }, () => {
  let ward: Ward
  let browser: Browser
  const pages: ConsolePage[] = []

  const signedIn = async () => {
    const page = await consolePage(browser)
    pages.push(page)
    page.setDefaultTimeout(20_000)
    await page.goto(`${ward.url}/#token=${ADMIN}`)
    await page.locator('[data-connection="live"]').waitFor()
    return page
  }
  /** Each test alone: its page the only one on the server (a blip cuts every stream), no alert left open. */
  const closePages = async () => {
    for (const page of pages.splice(0)) await page.context().close()
    await ward.resolveAll()
  }

  beforeAll(async () => {
    ward = await startWard('live-data')
    for (const [id, name] of [['btn-ld-1', 'Cổng chợ A'], ['btn-ld-2', 'Ngã tư B'], ['btn-ld-3', 'Bến xe C'], ['btn-ld-4', 'Trạm D'], ['btn-ld-5', 'Hẻm E']]) {
      await ward.provision(id!, name!)
    }
    browser = await launchChromium()
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await ward?.close()
  })

  it('retries a read of a new panic that failed, showing the data as incomplete meanwhile', async () => {
    const page = await signedIn()
    let failed = 0
    await page.route(ALERT_READ, (route) => (failed++ < 2 ? route.fulfill({ status: 502, contentType: 'text/html', body: '<h1>502 Bad Gateway</h1>' }) : route.continue()))
    await ward.press('btn-ld-1')
    // Not green while the read waits for its retry: the list may lack a panic.
    await page.locator('[data-connection="degraded"]').waitFor({ timeout: 10_000 })
    await page.locator('.alert-card', { hasText: 'Cổng chợ A' }).waitFor()
    await page.locator('.cue-banner', { hasText: 'Cổng chợ A' }).waitFor()
    // Green again as soon as the read succeeded (the retries are 1 s, then 2 s apart).
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5000 })
    expect(failed).toBeGreaterThanOrEqual(3)
    await closePages()
  })

  it('retries a full reload after a reconnect when one of its requests failed', async () => {
    const page = await signedIn()
    await page.context().setOffline(true)
    ward.dropConnections()
    await page.locator('[data-connection="down"]').waitFor()
    await ward.press('btn-ld-2') // pressed during the gap: only the reload brings it
    let failed = 0
    await page.route(/\/v1\/alerts\?state=open/, (route) => (failed++ === 0 ? route.abort('connectionreset') : route.continue()))
    await page.context().setOffline(false)
    await page.locator('.alert-card', { hasText: 'Ngã tư B' }).waitFor()
    await page.locator('[data-connection="live"]').waitFor()
    expect(failed).toBeGreaterThanOrEqual(2)
    await closePages()
  })

  it('does not hold live changes behind a reload request that hangs, nor show green while it does', async () => {
    const page = await signedIn()
    const held: Route[] = []
    await page.route(/\/v1\/gateways$/, (route) => { held.push(route) }) // never answered
    ward.dropConnections() // a blip: the stream reconnects and reloads
    await page.waitForFunction(() => true) // let the page see the cut
    const deadline = Date.now() + 15_000
    while (held.length === 0 && Date.now() < deadline) await sleep(100)
    expect(held.length, 'the reload after the reconnect asked for the gateways').toBeGreaterThan(0)
    await sleep(2000)
    expect(await page.locator('.conn').getAttribute('data-connection'), 'green over a reload still on its way').not.toBe('live')
    // A panic meanwhile reaches the operators at once, not after the hung request.
    await ward.press('btn-ld-3')
    await page.locator('.alert-card', { hasText: 'Bến xe C' }).waitFor({ timeout: 10_000 })
    // The hung request times out and the reload is tried again (the network is fine by now).
    await page.unroute(/\/v1\/gateways$/)
    await page.locator('[data-connection="live"]').waitFor({ timeout: 45_000 })
    await closePages()
  })

  it('does not bring a resolved case back as a new panic when an older read of it lands last', async () => {
    const page = await signedIn()
    await page.tones()
    let reads = 0
    let firstHandedOver = false
    await page.route(ALERT_READ, async (route) => {
      const mine = ++reads
      const response = await route.fetch()
      const body = await response.json()
      if (mine === 1) {
        // Another desk resolves it just after this read was answered; the answer is late.
        expect(body.state).toBe('open')
        await ward.ok('POST', `/v1/alerts/${body.id}/resolve`, { outcome: 'accidental', note: 'desk 2' })
        await sleep(1500)
      }
      await route.fulfill({ response, json: body })
      if (mine === 1) firstHandedOver = true
    })
    await ward.press('btn-ld-4')
    const deadline = Date.now() + 15_000
    while (!firstHandedOver && Date.now() < deadline) await sleep(100)
    expect(firstHandedOver).toBe(true)
    await sleep(1000)
    expect(await page.locator('.alert-card', { hasText: 'Trạm D' }).count(), 'a ghost card of a resolved case').toBe(0)
    expect(await page.locator('.cue-banner', { hasText: 'Trạm D' }).count()).toBe(0)
    expect(await page.title()).not.toMatch(/^\(\d+\)/)
    expect((await page.tones()).filter((f) => !SOUNDS.reminder.notes.includes(f)), 'a new-alert sound for a closed case').toEqual([])
    await closePages()
  })

  it('takes what the detail read says into the list (the list\'s own read of the change is held up)', async () => {
    const page = await signedIn()
    await ward.press('btn-ld-5')
    const card = page.locator('.alert-card', { hasText: 'Hẻm E' })
    await card.waitFor()
    expect(await card.textContent()).toContain('Chờ tiếp nhận')
    // The read the stream event starts hangs; the operator's click reads the alert again.
    const held: Route[] = []
    await page.route(ALERT_READ, (route) => (held.length === 0 ? void held.push(route) : route.continue()))
    const alert = await ward.activeAlert('btn-ld-5')
    await ward.ok('POST', `/v1/alerts/${alert.id}/acknowledge`, { note: 'desk 2' })
    const deadline = Date.now() + 10_000
    while (held.length === 0 && Date.now() < deadline) await sleep(100)
    expect(held.length).toBe(1)
    await card.locator('.card-button').click()
    await page.locator('.detail .state-chip', { hasText: 'Đã tiếp nhận' }).waitFor()
    await page.locator('.alert-card', { hasText: 'Hẻm E' }).filter({ hasText: 'Đã tiếp nhận' }).waitFor({ timeout: 3000 })
    await closePages()
  })
})
