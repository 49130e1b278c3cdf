/**
 * The operator console in a real browser (Debian Chromium via playwright-core) against the real
 * system: gateway and server on ephemeral ports, devices as real MQTT.js clients.
 * The tests run in order on one page, as one operator's shift would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { consolePage, launchChromium, screenshot } from './browser.js'

describe('operator console', { timeout: 60_000 }, () => {
  let system: TestSystem
  let browser: Browser
  let page: Awaited<ReturnType<typeof consolePage>>
  let button: MqttClient
  let acks: Awaited<ReturnType<typeof ackCollector>>
  let alertId: string
  let kioskSecret: string
  let otherSecret: string
  const id = 'btn-con-001'
  const name = 'Cổng trường Nguyễn Văn Quá'
  let seq = 0
  const pageErrors: string[] = []

  const press = () => button.publishAsync(topics.event(id), JSON.stringify({ seq: ++seq, type: 'press' }), { qos: 1 })
  /** Waits until an element matching `selector` shows `text` (Playwright waits, no fixed sleeps). */
  const shows = (selector: string, text: string | RegExp) => page.locator(selector).filter({ hasText: text }).first().waitFor()
  /** Whether the server offers a route yet (reports and announcements are being built beside the console). */
  const offers = async (method: string, path: string) => {
    const { status, body } = await system.api(method, path, method === 'POST' ? {} : undefined)
    return !(status === 404 && String(body?.message).startsWith('no route'))
  }

  beforeAll(async () => {
    system = await startSystem()
    const secret = await system.provision(id, { name, lat: 10.8625, lon: 106.7012 })
    kioskSecret = await system.provision('kiosk-con-001', { kind: 'kiosk', name: 'Kiosk chợ Bà Điểm', lat: 10.8641, lon: 106.6985 })
    otherSecret = await system.provision('btn-con-002', { name: 'Ngã tư Lê Văn Khương', lat: 10.8597, lon: 106.6958 })
    button = await connectDevice(system.mqttUrl, id, id, secret)
    acks = await ackCollector(button, id)
    // A heartbeat first, so the device is online with a low battery in the fleet view.
    await button.publishAsync(topics.event(id), JSON.stringify({ seq: ++seq, type: 'heartbeat', battery: 12 }), { qos: 1 })
    browser = await launchChromium()
    page = await consolePage(browser)
    page.setDefaultTimeout(15_000)
    // Script errors and blocked resources (the page's own security policy) fail the last test.
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (message) => { if (/Content Security Policy|Uncaught/.test(message.text())) pageErrors.push(message.text()) })
    // Embedded PostgreSQL (WASM) and a browser starting on two busy cores: a budget, not a timed assertion.
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await button?.endAsync()
    await system?.stop()
  })

  it('refuses a wrong token in the sign-in form, then signs in from #token= and hides the token', async () => {
    await page.goto(system.server.url + '/')
    await page.getByLabel('Mã truy cập của cán bộ trực').fill('sos_not-a-real-token')
    await page.getByRole('button', { name: 'Đăng nhập', exact: true }).click()
    await shows('[role="alert"]', 'Mã truy cập không hợp lệ hoặc đã bị thu hồi.')

    await page.goto(`${system.server.url}/#token=${system.adminToken}`)
    await page.locator('[data-connection="live"]').waitFor()
    expect(page.url()).not.toContain(system.adminToken)
    await shows('.empty', 'Không có cảnh báo nào đang mở.')
  })

  it('keeps its session when a link carries another token (a link must not put the console under someone else\'s token)', async () => {
    const { body } = await system.api('POST', '/v1/tokens', { role: 'analyst', name: 'a link' })
    // Pasted into the open tab (only the fragment changes), and opened as a new page load.
    for (const address of [`/#token=${body.token}`, `/?from=link#token=${body.token}`]) {
      await page.goto(system.server.url + address)
      await page.locator('[data-connection="live"]').waitFor()
      await page.waitForFunction(() => !location.hash.includes('token'))
      expect(page.url()).not.toContain(body.token)
      expect(await page.evaluate(() => [sessionStorage.getItem('sos.token'), localStorage.getItem('sos.token')])).toEqual([system.adminToken, system.adminToken])
    }
  })

  it('takes a new link on a wall display whose kept token was revoked', async () => {
    const wall = await consolePage(browser)
    try {
      const issue = async (name: string) => (await system.api('POST', '/v1/tokens', { role: 'operator', name })).body as { id: string, token: string }
      const [old, fresh] = [await issue('wall old'), await issue('wall new')]
      await wall.goto(`${system.server.url}/#token=${old.token}`)
      await wall.locator('[data-connection="live"]').waitFor()
      expect((await system.api('DELETE', `/v1/tokens/${old.id}`)).status).toBe(204)
      await wall.goto(`${system.server.url}/?restarted=1#token=${fresh.token}`)
      await wall.locator('[data-connection="live"]').waitFor()
      expect(await wall.evaluate(() => localStorage.getItem('sos.token'))).toBe(fresh.token)
    } finally {
      await wall.context().close()
    }
  })

  it('shows a press from a device without reloading, with a beep and a banner', async () => {
    await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true })
    const beepsBefore = await page.beeps()
    await press()
    const card = page.locator('.alert-card', { hasText: name })
    await card.waitFor()
    alertId = (await card.getAttribute('data-alert-id'))!
    expect(await card.textContent()).toMatch(/SOS khẩn cấp[\s\S]*Chờ tiếp nhận[\s\S]*apd-1[\s\S]*1 lần bấm/)
    await shows('.cue-banner', name)
    expect(await page.beeps()).toBeGreaterThan(beepsBefore)
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true)
    expect(await page.title()).toMatch(/^\(1\) /)

    // Further presses join the alert: the count goes up on the same card.
    await press()
    await shows('.alert-card', '2 lần bấm')
    expect(await page.locator('.alert-card').count()).toBe(1)
  })

  it('opens the detail with a timeline of presses and transitions, and saves a screenshot', async () => {
    await page.locator(`.alert-card[data-alert-id="${alertId}"] .card-button`).click()
    const items = page.locator('.detail .timeline li')
    await items.nth(2).waitFor()
    expect(await items.allTextContents()).toEqual([
      expect.stringContaining('Bấm nút (#2)'),
      expect.stringContaining('Cảnh báo được mở'),
      expect.stringContaining('Bấm nút (#3)')
    ])
    // The alert on the map, and a dot for each of the three devices.
    expect(await page.locator('.leaflet-marker-icon .alert-pin.state-open').count()).toBe(1)
    expect(await page.locator('path.leaflet-interactive').count()).toBe(3)
    await screenshot(page, 'console-alert-open')
  })

  it('acknowledging in the console sends "acknowledged" to the device', async () => {
    await page.getByLabel('Ghi chú (không bắt buộc)').fill('Tổ tuần tra 2 đang tới')
    await page.getByRole('button', { name: 'Tiếp nhận', exact: true }).click()
    const ack = await acks.waitFor((a) => a.state === 'acknowledged', 15_000)
    expect(ack).toMatchObject({ alertId, seq: 3 })
    await shows('.detail .state-chip', 'Đã tiếp nhận')
    await shows('.detail .timeline', 'Tổ tuần tra 2 đang tới')
    const { body } = await system.api('GET', `/v1/alerts/${alertId}`)
    expect(body.transitions.at(-1)).toMatchObject({ to: 'acknowledged', actor: 'admin', note: 'Tổ tuần tra 2 đang tới' })
  })

  it('switches the labels to English and back', async () => {
    const tabs = page.getByRole('tab')
    expect(await tabs.allTextContents()).toEqual(['Cảnh báo', 'Phản ánh', 'Thông báo', 'Thiết bị'].map((label) => expect.stringContaining(label)))
    await page.getByRole('button', { name: 'EN', exact: true }).click()
    await shows('[role="tab"]', 'Alerts')
    expect(await tabs.allTextContents()).toEqual(['Alerts', 'Reports', 'Announcements', 'Devices'].map((label) => expect.stringContaining(label)))
    expect(await page.locator('html').getAttribute('lang')).toBe('en')
    expect(await page.locator('.detail .state-chip').textContent()).toBe('Acknowledged')
    expect(await page.getByRole('button', { name: 'Dispatch', exact: true }).isEnabled()).toBe(true)
    await screenshot(page, 'console-english')
    await page.getByRole('button', { name: 'VI', exact: true }).click()
    await shows('[role="tab"]', 'Cảnh báo')
  })

  it('dispatches, then resolves with an outcome and a note; the alert leaves the list', async () => {
    await page.getByRole('button', { name: 'Điều lực lượng', exact: true }).click()
    await acks.waitFor((a) => a.state === 'dispatched', 15_000)
    await shows('.detail .state-chip', 'Đã điều lực lượng')
    // Resolving needs an outcome: without one the button only points at the choice.
    await page.getByRole('button', { name: 'Kết thúc vụ việc' }).click()
    expect(await page.getByLabel('Kết quả xử lý').evaluate((el) => el === document.activeElement)).toBe(true)
    await page.getByLabel('Kết quả xử lý').selectOption('false_alarm')
    await page.getByLabel('Ghi chú (không bắt buộc)').fill('Trẻ em bấm thử')
    await page.getByRole('button', { name: 'Kết thúc vụ việc' }).click()
    await acks.waitFor((a) => a.state === 'resolved', 15_000)
    await page.locator('.alert-card').waitFor({ state: 'detached' })
    await shows('.detail .state-chip', 'Đã xử lý xong')
    const { body } = await system.api('GET', `/v1/alerts/${alertId}`)
    expect(body).toMatchObject({ state: 'resolved', outcome: 'false_alarm' })
    expect(body.transitions.map((t: { to: string }) => t.to)).toEqual(['open', 'acknowledged', 'dispatched', 'resolved'])
    expect(acks.acks.filter((a) => a.state === 'resolved')).toHaveLength(1)
  })

  it('shows when the stream is cut, and catches up on what happened meanwhile', async () => {
    const other = await connectDevice(system.mqttUrl, 'btn-con-002', 'btn-con-002', otherSecret)
    // The browser loses the network: the open stream is cut and reconnecting fails until it is back.
    await page.context().setOffline(true)
    try {
      system.server.app.server.closeAllConnections()
      await page.locator('[data-connection="down"]').waitFor()
      await shows('[role="status"]', 'MẤT KẾT NỐI')
      await other.publishAsync(topics.event('btn-con-002'), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
      await eventually(async () => {
        const { body } = await system.api('GET', '/v1/alerts?state=open&deviceId=btn-con-002')
        return body.length === 1 ? true : undefined
      }, 10_000, 'alert stored on the server')
      expect(await page.locator('.alert-card').count()).toBe(0)
    } finally {
      await page.context().setOffline(false)
    }
    await page.locator('[data-connection="live"]').waitFor({ timeout: 30_000 })
    await shows('.alert-card', 'Ngã tư Lê Văn Khương')
    await other.endAsync()
  })

  it('orders the list: waiting before taken, then newest; what another desk does shows live', async () => {
    await press() // the earlier alert was resolved: this opens a new one, newer than the other device's
    const names = () => page.locator('.alert-card .device-name').allTextContents()
    await page.locator('.alert-card').nth(1).waitFor()
    expect(await names()).toEqual([name, 'Ngã tư Lê Văn Khương'])
    const { body } = await system.api('GET', `/v1/alerts?state=open&deviceId=${id}`)
    await system.api('POST', `/v1/alerts/${body[0].id}/acknowledge`, {})
    await shows('.alert-card:first-child', 'Ngã tư Lê Văn Khương')
    expect(await names()).toEqual(['Ngã tư Lê Văn Khương', name])
    await shows(`.alert-card[data-alert-id="${body[0].id}"]`, 'Đã tiếp nhận')
  })

  it('lists offline, low-battery and never-seen devices in the fleet view, below the gateways they are behind', async () => {
    await page.getByRole('tab', { name: /Thiết bị/ }).click()
    // The gateway the devices are behind, connected, with as many devices as the server counts.
    const gateway = page.locator('table.gateways tr[data-gateway-id="gw-test"]')
    await gateway.waitFor()
    const { body: gateways } = await system.api('GET', '/v1/gateways')
    const devicesBehind = (gateways as any[]).find((g) => g.id === 'gw-test').devices
    expect(devicesBehind).toBeGreaterThan(0)
    expect(await gateway.textContent()).toMatch(new RegExp(`Đang kết nối\\s*${devicesBehind}\\b`))
    const rows = page.locator('table.fleet tbody tr')
    // "Needs attention" first: the low battery and the kiosk never heard from, not the healthy button.
    await rows.nth(1).waitFor()
    expect(await rows.count()).toBe(2)
    expect(await page.locator('tr[data-device-id="btn-con-002"]').count()).toBe(0)
    await page.locator('button[data-filter="all"]').click()
    await rows.nth(2).waitFor()
    expect(await rows.count()).toBe(3)
    expect(await page.locator(`tr[data-device-id="${id}"]`).textContent()).toMatch(/Đang hoạt động[\s\S]*Pin yếu[\s\S]*12%/)
    expect(await page.locator('tr[data-device-id="kiosk-con-001"]').textContent()).toMatch(/Mất liên lạc[\s\S]*chưa từng/)
    await page.locator('button[data-filter="lowBattery"]').click()
    await rows.nth(1).waitFor({ state: 'detached' })
    expect(await rows.count()).toBe(1)
    await screenshot(page, 'console-fleet')
  })

  it('sends an announcement to the kiosks of a zone (or says the server cannot yet)', async () => {
    await page.getByRole('tab', { name: 'Thông báo' }).click()
    await page.getByLabel('Tiêu đề').fill('Cúp điện khu phố 3')
    await page.getByLabel('Nội dung').fill('Điện lực cắt điện từ 8 giờ đến 11 giờ sáng mai để bảo trì.')
    if (!await offers('POST', '/v1/announcements')) {
      await page.getByRole('button', { name: 'Gửi thông báo' }).click()
      await shows('.flash-message.error', 'Máy chủ chưa hỗ trợ chức năng này.')
      return
    }
    const kiosk = await connectDevice(system.mqttUrl, 'kiosk-con-001', 'kiosk-con-001', kioskSecret)
    const received = new Promise<any>((resolve) => kiosk.on('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))))
    await kiosk.subscribeAsync(topics.announce('apd-1'), { qos: 1 })
    await page.getByRole('button', { name: 'Gửi thông báo' }).click()
    await shows('.flash-message.ok', 'apd-1')
    expect(await received).toMatchObject({ title: 'Cúp điện khu phố 3', lang: 'vi' })
    await kiosk.endAsync()
  })

  it('queues resident reports with their ticket ids (or says the server cannot yet)', async () => {
    if (!await offers('GET', '/v1/reports')) {
      await page.getByRole('tab', { name: 'Phản ánh' }).click()
      await shows('#view-reports .empty', 'Máy chủ chưa hỗ trợ chức năng này.')
      return
    }
    const kiosk = await connectDevice(system.mqttUrl, 'kiosk-con-001', 'kiosk-con-001', kioskSecret)
    await kiosk.publishAsync(topics.event('kiosk-con-001'), JSON.stringify({ seq: 1, type: 'report', report: { category: 'noise', text: 'Karaoke quá 22 giờ' } }), { qos: 1 })
    await kiosk.endAsync()
    await eventually(async () => ((await system.api('GET', '/v1/reports')).body as unknown[]).length > 0 || undefined, 10_000, 'report stored')
    await page.getByRole('tab', { name: 'Phản ánh' }).click()
    const row = page.locator('table.reports tbody tr', { hasText: 'Karaoke quá 22 giờ' })
    await row.waitFor()
    expect(await row.textContent()).toContain('Gây ồn ào')
    await row.getByRole('button', { name: 'Đóng phiếu' }).click()
    await row.waitFor({ state: 'detached' })
  })

  it('ran the whole shift without a script error or a resource blocked by the page policy', () => {
    expect(pageErrors).toEqual([])
  })
})
