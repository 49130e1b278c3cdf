/**
 * Times in the ward's zone (CONSOLE_TIME_ZONE, by default Asia/Ho_Chi_Minh), labeled, on a PC
 * set to another zone, in a real browser against the real server. Before: every time followed
 * the PC's zone without saying so (a laptop from elsewhere showed a panic 7 hours off), and an
 * announcement's expiry was typed in the PC's time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { consolePage, launchChromium } from './browser.js'
import { ADMIN, startWard, type Ward } from './ward.js'

const WARD_ZONE = 'Asia/Ho_Chi_Minh'
const PC_ZONE = 'Europe/London'
const hourMinute = (iso: string, timeZone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso))

describe('operator console: times in the ward\'s zone', { timeout: 90_000 }, () => {
  let ward: Ward
  let browser: Browser

  beforeAll(async () => {
    ward = await startWard('time-zone')
    await ward.provision('btn-tz-1', 'Cổng chợ A')
    browser = await launchChromium()
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await ward?.close()
  })

  it('shows an alert\'s times in the ward\'s zone with its name, whatever the PC\'s zone', async () => {
    const page = await consolePage(browser, { timezoneId: PC_ZONE })
    page.setDefaultTimeout(20_000)
    await page.goto(`${ward.url}/#token=${ADMIN}`)
    await page.locator('[data-connection="live"]').waitFor()
    await ward.press('btn-tz-1')
    const alert = await ward.activeAlert('btn-tz-1')
    const card = page.locator('.alert-card', { hasText: 'Cổng chợ A' })
    await card.locator('.card-button').click()
    const opened = page.locator('.detail .facts div', { hasText: 'Mở lúc' })
    await opened.waitFor()
    const text = (await opened.textContent())!.replace(/\s+/g, ' ')
    expect(text).toContain(hourMinute(alert.openedAt, WARD_ZONE))
    expect(text).not.toContain(hourMinute(alert.openedAt, PC_ZONE))
    expect(text).toContain('GMT+7')
    expect(await page.locator('.detail h3', { hasText: 'Diễn biến' }).textContent()).toContain('GMT+7')
    // The card's tooltip: the full date and time, with its zone (it was the raw ISO string).
    const tooltip = await card.locator('.age').getAttribute('title')
    expect(tooltip).toContain(hourMinute(alert.openedAt, WARD_ZONE))
    expect(tooltip).toContain('GMT+7')

    // An announcement's expiry is typed in the ward's time too, and says so.
    await page.getByRole('tab', { name: 'Thông báo' }).click()
    const expires = page.locator('input[name="expiresAt"]')
    const tomorrow = new Date(Date.now() + 24 * 3600_000).toISOString()
    expect((await expires.inputValue()).slice(11, 16)).toBe(hourMinute(tomorrow, WARD_ZONE))
    expect(await page.locator('label', { has: expires }).textContent()).toContain('GMT+7')
    await page.context().close()
  })
})
