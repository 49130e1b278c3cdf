/**
 * A wall display starting from its link (`/#token=…`) while the API does not answer yet (a
 * proxy's 502 while the server starts, a network still coming up after a power cut), in a real
 * browser against the real server, the first checks of the token faulted with page.route.
 * Before: one failed check left the display on the sign-in form for good, although it held a
 * good token: no alerts, no sound, until someone came to it. Only 401/403 mean a bad token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { consolePage, launchChromium } from './browser.js'
import { startWard, type Ward } from './ward.js'

/** The sign-in's token check (any operator read): api.js checkToken. */
const TOKEN_CHECK = /\/v1\/devices\?limit=1$/

describe('operator console: a wall display starting while the server does not answer', { timeout: 90_000 }, () => {
  let ward: Ward
  let browser: Browser

  const wallToken = async (name: string) => (await ward.ok('POST', '/v1/tokens', { role: 'operator', name })).token as string

  beforeAll(async () => {
    ward = await startWard('wall-boot')
    await ward.provision('btn-wb-1', 'Cổng chợ A')
    browser = await launchChromium()
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await ward?.close()
  })

  it('starts with the token it holds when its link carries that token and the check fails with 502', async () => {
    const page = await consolePage(browser)
    const link = `${ward.url}/#token=${await wallToken('wall 1')}`
    await page.goto(link)
    await page.locator('[data-connection="live"]').waitFor()
    // A power cut: the display opens its link again, the API answers 502 once.
    let checks = 0
    await page.route(TOKEN_CHECK, (route) => (checks++ === 0 ? route.fulfill({ status: 502, body: 'Bad Gateway' }) : route.continue()))
    await page.evaluate(() => sessionStorage.clear())
    await page.goto('about:blank')
    await page.goto(link)
    await page.locator('[data-connection="live"]').waitFor({ timeout: 15_000 })
    await ward.press('btn-wb-1')
    await page.locator('.alert-card', { hasText: 'Cổng chợ A' }).waitFor()
    expect(await page.locator('#signin').isVisible()).toBe(false)
    await page.context().close()
    await ward.resolveAll()
  })

  it('checks a new link\'s token again while the server does not answer, then starts', async () => {
    const page = await consolePage(browser)
    let checks = 0
    await page.route(TOKEN_CHECK, (route) => (checks++ < 2 ? route.fulfill({ status: 502, body: 'Bad Gateway' }) : route.continue()))
    await page.goto(`${ward.url}/#token=${await wallToken('wall 2')}`)
    await page.locator('.signin-card [role="alert"]', { hasText: 'Đang tự thử lại' }).waitFor({ timeout: 10_000 })
    await page.locator('[data-connection="live"]').waitFor({ timeout: 20_000 })
    expect(checks).toBe(3)
    expect(await page.evaluate(() => localStorage.getItem('sos.token'))).not.toBeNull()
    await page.context().close()
  })

  it('still refuses a link whose token the server refuses (401), at once', async () => {
    const page = await consolePage(browser)
    await page.goto(`${ward.url}/#token=sos_not-a-real-token`)
    await page.locator('.signin-card [role="alert"]', { hasText: 'Mã truy cập không hợp lệ' }).waitFor({ timeout: 10_000 })
    expect(await page.evaluate(() => localStorage.getItem('sos.token'))).toBeNull()
    await page.context().close()
  })
})
