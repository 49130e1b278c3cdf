/**
 * The console during a wide outage, in a real browser: hundreds of devices going offline at
 * once (a gateway's last wills) must neither freeze the page nor hide a panic. Before, every
 * change rebuilt every map marker and label: 100 such alerts held a new panic back for about a
 * minute, and each device_offline alert took the banner and pushed the panic down the list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { consolePage, launchChromium, screenshot } from './browser.js'
import { startConsoleServer } from './server.js'

const ADMIN = 'admin_console_outage_test'
const GATEWAY = 'gw_console_outage_test'
const OUTAGE = 150

describe('operator console during a wide outage', { timeout: 120_000 }, () => {
  let server: Awaited<ReturnType<typeof startConsoleServer>>
  let browser: Browser
  let seq = 0
  const call = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'x-gateway-id': 'gw-outage', ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined
    })
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`)
  }
  const provision = (id: string, name: string) => call('POST', '/v1/devices', { id, kind: 'button', name, zone: 'apd-1', lat: 10.86 + Math.random() / 100, lon: 106.7 + Math.random() / 100 })
  const press = (deviceId: string) => {
    const event = { seq: ++seq, type: 'press' }
    return call('POST', '/v1/ingest', { events: [{ eventId: `${deviceId}/-/${event.seq}`, deviceId, gatewayId: 'gw-outage', receivedAt: Date.now(), skewed: false, event }] }, GATEWAY)
  }
  const outage = Array.from({ length: OUTAGE }, (_, i) => `btn-out-${String(i).padStart(3, '0')}`)

  beforeAll(async () => {
    // No escalation within the test: the order checked below is that of two waiting panics.
    server = await startConsoleServer('outage', { admin: ADMIN, gateway: GATEWAY }, { ESCALATE_AFTER: '1h' })
    await provision('btn-panic-1', 'PANIC ONE')
    await provision('btn-panic-2', 'PANIC TWO')
    for (let i = 0; i < outage.length; i += 25) await Promise.all(outage.slice(i, i + 25).map((id) => provision(id, `Outage ${id}`)))
    browser = await launchChromium()
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it('keeps showing panics first, on the banner and at once, while hundreds of devices go offline', async () => {
    const page = await consolePage(browser)
    page.setDefaultTimeout(30_000)
    await page.goto(`${server.url}/#token=${ADMIN}`)
    await page.locator('[data-connection="live"]').waitFor()
    await press('btn-panic-1')
    await page.locator('.alert-card', { hasText: 'PANIC ONE' }).waitFor()

    // The outage: every device offline in one batch, as a gateway reports its devices' wills.
    await call('POST', '/v1/ingest', { events: [], presence: outage.map((deviceId) => ({ deviceId, gatewayId: 'gw-outage', state: 'offline', at: Date.now(), reason: 'will' })) }, GATEWAY)
    // A panic during it shows at once (a budget for a busy machine, not a timing target).
    await press('btn-panic-2')
    await page.locator('.alert-card', { hasText: 'PANIC TWO' }).waitFor({ timeout: 20_000 })
    // The banner is the panic's, whatever offline alerts come around it.
    expect(await page.locator('.cue-banner').textContent()).toContain('PANIC TWO')
    // The page keeps up with the outage too.
    await page.waitForFunction((n) => document.querySelectorAll('.alert-card').length >= n, OUTAGE + 2, { timeout: 60_000 })
    const cards = await page.locator('.alert-card').allTextContents()
    expect(cards.slice(0, 2).map((c) => /PANIC TWO/.test(c) ? 'PANIC TWO' : /PANIC ONE/.test(c) ? 'PANIC ONE' : c.slice(0, 40))).toEqual(['PANIC TWO', 'PANIC ONE'])
    // Only the panics are labelled on the map: an outage's labels would bury theirs.
    expect(await page.locator('.leaflet-tooltip.alert-label').allTextContents()).toEqual(expect.arrayContaining(['PANIC ONE', 'PANIC TWO']))
    expect(await page.locator('.leaflet-tooltip.alert-label').count()).toBe(2)
    await screenshot(page, 'console-outage')
  })
})
