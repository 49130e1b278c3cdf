/**
 * The console resolves the alert the operator saw. Before: an operator looking at one press chose
 * "prank" and clicked; the person pressed again just then; the resolve closed both presses and
 * the device's light went out. Now the console sends the version it showed; the server refuses a
 * resolve of an alert changed since, and the console reads it again and says plainly that the
 * person pressed again, the alert still open, the outcome and note still in the form.
 * A real browser against the real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { consolePage, launchChromium, type ConsolePage } from './browser.js'
import { ADMIN, startWard, type Ward } from './ward.js'

describe('operator console: a press while resolving', { timeout: 90_000 }, () => {
  let ward: Ward
  let browser: Browser
  const pages: ConsolePage[] = []

  const signedIn = async (lang: 'vi' | 'en') => {
    const page = await consolePage(browser)
    pages.push(page)
    page.setDefaultTimeout(20_000)
    await page.addInitScript((l) => localStorage.setItem('sos.lang', l), lang)
    await page.goto(`${ward.url}/#token=${ADMIN}`)
    await page.locator('[data-connection="live"]').waitFor()
    return page
  }

  /**
   * The operator resolves as "prank"; `meanwhile` happens while the request is on its way (done
   * before the resolve reaches the server): by default the person presses again. What the
   * resolve sent, and its answer.
   */
  const resolveWhilePressed = async (page: ConsolePage, deviceId: string, name: string, labels: { outcome: string, resolve: string }, meanwhile = () => ward.press(deviceId)) => {
    await page.locator('.alert-card', { hasText: name }).locator('.card-button').click()
    await page.locator('.detail .device-name', { hasText: name }).waitFor()
    let sent: any = null
    await page.route(/\/resolve$/, async (route) => {
      sent = route.request().postDataJSON()
      await meanwhile()
      await route.continue()
    })
    const answered = page.waitForResponse(/\/resolve$/)
    await page.getByLabel(labels.outcome).selectOption('prank')
    await page.getByRole('button', { name: labels.resolve, exact: true }).click()
    const response = await answered
    await page.unroute(/\/resolve$/)
    return { sent, status: response.status() }
  }

  beforeAll(async () => {
    ward = await startWard('resolve-after-press')
    await ward.provision('btn-rap-vi', 'Cổng chợ Bến Thành')
    await ward.provision('btn-rap-en', 'Ngã tư Hàng Xanh')
    await ward.provision('btn-rap-desk', 'Bến xe Miền Đông')
    browser = await launchChromium()
  }, 180_000)

  afterAll(async () => {
    for (const page of pages) await page.context().close().catch(() => {})
    await browser?.close()
    await ward?.close()
  })

  it('refuses to close a press the operator did not see, says so in Vietnamese, and keeps the alert open', async () => {
    await ward.press('btn-rap-vi')
    const page = await signedIn('vi')
    const shown = await ward.activeAlert('btn-rap-vi')
    expect(shown).toMatchObject({ state: 'open', pressCount: 1 })

    const { sent, status } = await resolveWhilePressed(page, 'btn-rap-vi', 'Cổng chợ Bến Thành', { outcome: 'Kết quả xử lý', resolve: 'Kết thúc vụ việc' })
    expect(sent).toMatchObject({ outcome: 'prank', expectedVersion: shown.version })
    expect(status).toBe(409)

    await page.locator('.detail .flash-message.error', { hasText: 'Người dân vừa bấm nút thêm (nay 2 lần bấm)' }).waitFor()
    await page.locator('.detail', { hasText: '2 lần bấm' }).waitFor()
    expect(await page.locator('.detail .state-chip').textContent()).toBe('Chờ tiếp nhận')
    // The choice made stays, to be made again on what is there now.
    expect(await page.getByLabel('Kết quả xử lý').inputValue()).toBe('prank')
    const now = await ward.activeAlert('btn-rap-vi')
    expect(now).toMatchObject({ id: shown.id, state: 'open', pressCount: 2, outcome: null })

    // Looked at again, resolved: the version now shown is the one sent.
    await page.getByLabel('Kết quả xử lý').selectOption('real')
    const again = page.waitForResponse(/\/resolve$/)
    await page.getByRole('button', { name: 'Kết thúc vụ việc', exact: true }).click()
    expect((await again).status()).toBe(200)
    expect(await ward.ok('GET', `/v1/alerts/${shown.id}`)).toMatchObject({ state: 'resolved', outcome: 'real', pressCount: 2 })
  })

  it('says it in English too', async () => {
    await ward.press('btn-rap-en')
    const page = await signedIn('en')
    const { status } = await resolveWhilePressed(page, 'btn-rap-en', 'Ngã tư Hàng Xanh', { outcome: 'Outcome', resolve: 'Resolve' })
    expect(status).toBe(409)
    await page.locator('.detail .flash-message.error', { hasText: 'The person pressed again (2 presses now): NOT resolved, the alert stays open.' }).waitFor()
    expect(await page.locator('.detail .state-chip').textContent()).toBe('Open')
    expect(await ward.activeAlert('btn-rap-en')).toMatchObject({ state: 'open', pressCount: 2 })
  })

  it('says so when another desk acted meanwhile, and resolves nothing', async () => {
    await ward.press('btn-rap-desk')
    const page = await signedIn('vi')
    const shown = await ward.activeAlert('btn-rap-desk')
    const { status } = await resolveWhilePressed(page, 'btn-rap-desk', 'Bến xe Miền Đông', { outcome: 'Kết quả xử lý', resolve: 'Kết thúc vụ việc' },
      () => ward.ok('POST', `/v1/alerts/${shown.id}/dispatch`, { note: 'bàn 2 điều xe' }))
    expect(status).toBe(409)
    await page.locator('.detail .flash-message.error', { hasText: 'Cảnh báo vừa thay đổi trong lúc bạn xem' }).waitFor()
    await page.locator('.detail .state-chip', { hasText: 'Đã điều lực lượng' }).waitFor()
    expect(await ward.activeAlert('btn-rap-desk')).toMatchObject({ id: shown.id, state: 'dispatched', outcome: null })
  })
})
