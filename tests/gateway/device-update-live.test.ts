/**
 * A correction made with PATCH /v1/devices/{id} reaches the devices already connected, through
 * a real gateway: its credential refresh picks the change up, and a live connection made under
 * the old zone or silent flag is closed (counted and logged like a rotated secret's), so the
 * device reconnects under the new ones. Before, a session kept what it signed in with: a shop
 * counter corrected to silent still heard the gateway's loud `rejected` answers, and a kiosk
 * moved to its right zone was still refused that zone's announcements, until it happened to
 * reconnect.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ackCollector, connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { metricValue } from './helpers.js'
import { topics } from '../../protocol/index.js'
import { Device } from '../../firmware-sim/device/device.js'
import { RecordedOutputs } from '../../firmware-sim/device/outputs.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

const closedAsReconfigured = (system: TestSystem) => metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'reconfigured' })

describe('device corrections reach live connections', () => {
  let system: TestSystem
  let stateDir: string
  const running: Device[] = []

  beforeAll(async () => {
    // A short refresh, so the test need not wait the default 30 s for the gateway to hear of it.
    system = await startSystem({ gateway: { credentialRefreshMs: 300 } })
    stateDir = mkdtempSync(join(tmpdir(), 'sos-device-update-'))
  })

  afterAll(async () => {
    for (const device of running) await device.stop()
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  it('a counter provisioned loud and corrected to silent is reconnected, and the gateway\'s and server\'s answers to it are silent', async () => {
    const id = 'ctr-was-loud'
    const secret = await system.provision(id, { kind: 'counter', silent: false, pin: '4821' })
    // It reconnects by itself, as firmware does.
    const counter = await connectDevice(system.mqttUrl, id, id, secret, { reconnectPeriod: 100 })
    let connects = 1
    counter.on('connect', () => { connects++ })
    const acks = await ackCollector(counter, id)
    await counter.publishAsync(topics.event(id), 'not json', { qos: 1 })
    expect((await acks.waitFor((a) => a.state === 'rejected')).silent).toBeUndefined()

    const patched = await system.api('PATCH', `/v1/devices/${id}`, { silent: true })
    expect(patched).toMatchObject({ status: 200, body: { id, silent: true } })

    // The next refresh lets the connection made loud go; the device is back at once.
    await expect.poll(() => connects, { timeout: 10_000 }).toBe(2)
    expect(await closedAsReconfigured(system)).toBe(1)
    await counter.subscribeAsync(topics.ack(id), { qos: 1 })
    acks.acks.length = 0
    await counter.publishAsync(topics.event(id), 'not json', { qos: 1 })
    expect(await acks.waitFor((a) => a.state === 'rejected', 10_000)).toMatchObject({ state: 'rejected', silent: true })
    // And the server's answer (through the forwarder) says silent too.
    await counter.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    expect(await acks.waitFor((a) => a.state === 'received', 10_000)).toMatchObject({ seq: 1, silent: true })
    await counter.endAsync()
    // Let go once, not at every refresh after.
    expect(await closedAsReconfigured(system)).toBe(1)
  })

  it('a kiosk provisioned in the wrong zone gets its right zone\'s retained announcement once corrected', async () => {
    const id = 'kiosk-wrong-zone'
    const before = await closedAsReconfigured(system)
    // Its firmware was set up for ward-7; the registry said ward-1 by mistake.
    const secret = await system.provision(id, { kind: 'kiosk', zone: 'ward-1' })
    const announcement = await system.api('POST', '/v1/announcements', { zone: 'ward-7', title: 'Cúp điện 14h', body: 'Phường 7', lang: 'vi', expiresAt: new Date(Date.now() + 3_600_000).toISOString() })
    expect(announcement.status).toBe(201)

    const outputs = new RecordedOutputs()
    const kiosk = new Device({ id, secret, kind: 'kiosk', zone: 'ward-7', mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 } }, outputs)
    running.push(kiosk)
    let connects = 0
    kiosk.on('connected', () => { connects++ })
    kiosk.start()
    await once(kiosk, 'connected')
    // Refused ward-7 (the ACL follows the registry): nothing on the screen.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(outputs.screens.filter((m) => m.kind === 'announcement')).toEqual([])

    expect((await system.api('PATCH', `/v1/devices/${id}`, { zone: 'ward-7' })).status).toBe(200)
    await expect.poll(() => outputs.screens.find((m) => m.kind === 'announcement')?.id, { timeout: 10_000 }).toBe(announcement.body.id)
    expect(connects).toBe(2)
    expect(await closedAsReconfigured(system)).toBe(before + 1)
  })
})
