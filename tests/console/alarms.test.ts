/**
 * What the console makes heard, in a real browser against the real server. Before: losing the
 * live feed for a minute changed nothing but a pill in the header (same title, no sound); a
 * wall display whose token was revoked went to a silent sign-in form; a low battery sounded
 * exactly like a panic, forty devices going offline started eighty tones at once, and mute
 * silenced panics too, for good. Sounds are told apart by their frequencies (sound.js SOUNDS),
 * read from the Web Audio oscillators the page starts. Time in the page runs on Playwright's
 * clock where a test needs minutes to pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { consolePage, launchChromium, type ConsolePage } from './browser.js'
import { ADMIN, startWard, type Ward } from './ward.js'
import { SOUNDS, timesPlayed as played } from './sounds.js'

const OUTAGE = 40
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('operator console: what it makes heard', { timeout: 120_000 }, () => {
  let ward: Ward
  let browser: Browser
  const pages: ConsolePage[] = []

  const signedIn = async (token = ADMIN, { fakeClock = false } = {}) => {
    const page = await consolePage(browser)
    pages.push(page)
    page.setDefaultTimeout(20_000)
    if (fakeClock) await page.clock.install()
    await page.goto(`${ward.url}/#token=${token}`)
    await page.locator('[data-connection="live"]').waitFor()
    await page.tones()
    return page
  }
  const closePages = async () => {
    for (const page of pages.splice(0)) await page.context().close()
    await ward.resolveAll()
  }

  beforeAll(async () => {
    ward = await startWard('alarms')
    await ward.provision('btn-al-panic', 'PANIC Cổng chợ')
    await ward.provision('btn-al-panic-2', 'PANIC TWO')
    await ward.provision('btn-al-bat', 'Pin yếu A')
    await ward.provision('btn-al-bat-2', 'Pin yếu B')
    const outage = Array.from({ length: OUTAGE }, (_, i) => `btn-al-off-${i}`)
    await Promise.all(outage.map((id) => ward.provision(id, `Offline ${id}`)))
    browser = await launchChromium()
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await ward?.close()
  })

  it('says a live feed lost for over 20 s in the title and with a repeating tone of its own, until it is back', async () => {
    const page = await signedIn(ADMIN, { fakeClock: true })
    const title = await page.title()
    await page.context().setOffline(true)
    ward.dropConnections()
    await page.locator('[data-connection="down"]').waitFor()
    // A blip (a reconnect takes seconds) is no alarm.
    await page.clock.fastForward(10_000)
    expect(await page.title()).toBe(title)
    expect(played(await page.tones(), 'lost')).toBe(0)
    await page.clock.fastForward(12_000)
    await page.waitForFunction(() => document.title.startsWith('⚠ MẤT KẾT NỐI · '))
    expect(await page.title()).toBe(`⚠ MẤT KẾT NỐI · ${title}`)
    expect(played(await page.tones(), 'lost')).toBe(1)
    // And again, while it lasts.
    await page.clock.fastForward(16_000)
    await page.waitForFunction(() => (window as unknown as { __tones: number[] }).__tones.length > 0)
    expect(played(await page.tones(), 'lost')).toBe(1)

    await page.context().setOffline(false)
    await page.clock.fastForward(16_000) // the stream's next try
    await page.locator('[data-connection="live"]').waitFor()
    await page.waitForFunction((t) => document.title === t, title)
    await page.tones() // (one may have sounded in the jump, before the stream was back)
    await page.clock.fastForward(16_000)
    expect(played(await page.tones(), 'lost'), 'the tone after the feed came back').toBe(0)
    await closePages()
  })

  it('raises the same alarm on a display signed out because its token was revoked, until someone is at it', async () => {
    const { id, token } = await ward.ok('POST', '/v1/tokens', { role: 'operator', name: 'wall display' })
    const page = await signedIn(token, { fakeClock: true })
    expect((await ward.call('DELETE', `/v1/tokens/${id}`)).status).toBe(204)
    ward.dropConnections() // the stream reconnects at once and hears 401 (else at its next token check, within 15 s)
    await page.locator('.signin-card [role="alert"]', { hasText: 'Phiên làm việc đã hết hiệu lực' }).waitFor()
    await page.waitForFunction(() => document.title.startsWith('⚠ ĐÃ BỊ ĐĂNG XUẤT · '))
    await page.waitForFunction(() => (window as unknown as { __tones: number[] }).__tones.length > 0)
    expect(played(await page.tones(), 'lost')).toBe(1)
    await page.clock.fastForward(16_000)
    expect(played(await page.tones(), 'lost')).toBe(1)
    // Someone at the screen: the tone stops, the title stays until a sign-in.
    await page.locator('.signin-card').click({ position: { x: 5, y: 5 } })
    await page.clock.fastForward(16_000)
    expect(played(await page.tones(), 'lost')).toBe(0)
    expect(await page.title()).toMatch(/^⚠ ĐÃ BỊ ĐĂNG XUẤT · /)
    expect(await page.evaluate(() => localStorage.getItem('sos.token'))).toBeNull()
    await closePages()
  })

  it('stops reading and stays silenced on a display signed out by a read that heard 401 (not by the stream)', async () => {
    const { id, token } = await ward.ok('POST', '/v1/tokens', { role: 'operator', name: 'wall display' })
    const page = await signedIn(token, { fakeClock: true })
    const reads: string[] = []
    page.on('request', (r) => { if (r.url().includes('/v1/')) reads.push(`${r.headers().authorization}`) })
    expect((await ward.call('DELETE', `/v1/tokens/${id}`)).status).toBe(204)
    await ward.press('btn-al-panic') // the stream event's read hears the 401
    await page.locator('.signin-card [role="alert"]').waitFor()
    await page.locator('.signin-card').click({ position: { x: 5, y: 5 } }) // someone at the screen
    await page.tones()
    const before = reads.length
    let lost = 0
    for (let i = 0; i < 4; i++) {
      await page.clock.fastForward(31_000)
      await sleep(300)
      lost += played(await page.tones(), 'lost')
    }
    expect(reads.slice(before), 'requests after the sign-out').toEqual([])
    expect(lost, 'the lost tone after someone silenced the display').toBe(0)
    await closePages()
  })

  it('gives a panic a sound of its own, one notice to a burst of device alerts, and keeps panics audible when muted', async () => {
    const page = await signedIn()
    await ward.send('btn-al-bat', { type: 'battery_low', battery: 9 })
    await page.locator('.alert-card', { hasText: 'Pin yếu A' }).waitFor()
    await sleep(1000)
    expect(await page.tones(), 'a low battery').toEqual(SOUNDS.notice.notes)

    await ward.press('btn-al-panic')
    await page.locator('.alert-card', { hasText: 'PANIC Cổng chợ' }).waitFor()
    await sleep(1000)
    expect(await page.tones(), 'a panic').toEqual(SOUNDS.panic.notes)

    // A gateway's devices all offline at once: one short notice at most, not a tone per alert.
    await ward.offline(Array.from({ length: OUTAGE }, (_, i) => `btn-al-off-${i}`))
    await page.waitForFunction((n) => document.querySelectorAll('.alert-card').length >= n, OUTAGE + 2)
    await sleep(2000)
    const outage = await page.tones()
    expect(outage.length, `${OUTAGE} devices offline: ${outage.length} tones`).toBeLessThanOrEqual(SOUNDS.notice.notes.length)
    expect(outage.every((f) => SOUNDS.notice.notes.includes(f))).toBe(true)

    // Muted: device notices are silent, a panic is not.
    await page.locator('button.sound').click()
    expect(await page.locator('button.sound').textContent()).toContain('SOS vẫn kêu')
    await sleep(5000) // past the outage's burst: this battery would sound if not muted
    await ward.send('btn-al-bat-2', { type: 'battery_low', battery: 7 })
    await page.locator('.alert-card', { hasText: 'Pin yếu B' }).waitFor()
    await sleep(1000)
    expect(played(await page.tones(), 'notice'), 'a muted notice').toBe(0)
    await ward.press('btn-al-panic-2')
    await page.locator('.alert-card', { hasText: 'PANIC TWO' }).waitFor()
    await sleep(1000)
    expect(played(await page.tones(), 'panic'), 'a panic while muted').toBe(1)
    await closePages()
  })
})
