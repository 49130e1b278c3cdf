/**
 * The device state machine against the real gateway and server over real sockets:
 * LED follows the acks, seq survives a restart, presses made while the gateway is down
 * arrive in order once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { eventually } from '../helpers/system.js'
import { startRestartableSystem, type RestartableSystem } from './restartable-system.js'
import { Device, type DeviceConfig } from '../../firmware-sim/device/device.js'
import { RecordedOutputs } from '../../firmware-sim/device/outputs.js'
import { parseDeviceTopic, topics } from '../../protocol/index.js'

describe('simulated device against the real gateway and server', () => {
  let system: RestartableSystem
  let stateDir: string
  const devices: Device[] = []

  const makeDevice = (config: Pick<DeviceConfig, 'id' | 'secret'> & Partial<DeviceConfig>, outputs = new RecordedOutputs()) => {
    const device = new Device({
      kind: 'button', zone: 'apd-1', mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000,
      backoff: { baseMs: 50, maxMs: 300 }, ...config
    }, outputs)
    devices.push(device)
    return { device, outputs }
  }
  const started = async (device: Device) => {
    device.start()
    if (!device.connected) await once(device, 'connected')
    return device
  }
  const eventsOf = async (id: string) => (await system.api<any[]>('GET', `/v1/events?deviceId=${id}`)).body

  beforeAll(async () => {
    system = await startRestartableSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-fw-state-'))
  }, 120_000)

  afterAll(async () => {
    for (const device of devices) await device.stop()
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  it('a press turns the LED to blinking on received, then steady after the operator acknowledges', async () => {
    const id = 'btn-fw-001'
    const { device, outputs } = makeDevice({ id, secret: await system.provision(id) })
    await started(device)
    device.press()

    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 5000, 'LED blinking')
    expect(outputs.sounds).toEqual(['received'])
    const alert = await eventually(async () => (await system.api<any[]>('GET', `/v1/alerts?deviceId=${id}`)).body[0], 5000, 'alert')
    expect(alert).toMatchObject({ kind: 'panic', state: 'open' })
    expect(outputs.ledMode).toBe('blinking') // nobody has acknowledged yet

    expect((await system.api('POST', `/v1/alerts/${alert.id}/acknowledge`, {})).status).toBe(200)
    await eventually(async () => outputs.ledMode === 'steady' ? true : undefined, 5000, 'LED steady')
    expect(outputs.ledHistory).toEqual(['blinking', 'steady'])
    expect(outputs.sounds).toEqual(['received', 'acknowledged'])

    expect((await system.api('POST', `/v1/alerts/${alert.id}/resolve`, { outcome: 'real' })).status).toBe(200)
    await eventually(async () => outputs.ledMode === 'off' ? true : undefined, 5000, 'LED off')
  })

  it('a restarted device continues its seq: the press after the restart is a new event, not a redelivery', async () => {
    const id = 'btn-fw-002'
    const secret = await system.provision(id)
    const first = makeDevice({ id, secret, seqReserve: 4 }).device
    await started(first)
    for (let i = 0; i < 6; i++) first.press()
    await eventually(async () => first.queued === 0 ? true : undefined, 5000, 'all published')
    const lastBefore = first.lastSeq
    const boot = first.boot
    await first.stop()

    const second = makeDevice({ id, secret, seqReserve: 4 }).device
    expect(second.boot).toBe(boot)
    await started(second)
    second.press()
    await eventually(async () => second.queued === 0 ? true : undefined, 5000, 'published after restart')
    expect(second.lastSeq).toBeGreaterThan(lastBefore)

    const events = await eventually(async () => {
      const list = await eventsOf(id)
      return list.filter((e) => e.type === 'press').length === 7 ? list : undefined
    }, 5000, 'seven stored presses')
    const seqs = events.filter((e) => e.type === 'press').map((e) => Number(e.seq)).sort((a, b) => a - b)
    expect(new Set(seqs).size).toBe(7)
    expect(seqs.at(-1)).toBe(second.lastSeq)
    expect(events.every((e) => e.boot === boot)).toBe(true)
  })

  it('a publish in flight when the link drops is resent after the reconnect, and the rest follow in order', async () => {
    const id = 'btn-fw-004'
    const { device } = makeDevice({ id, secret: await system.provision(id) })
    await started(device)
    const pubacked: number[] = []
    device.on('puback', (event) => pubacked.push(event.seq))
    device.press()
    device.tamper()
    device.press()
    device.dropLink() // the first press is on the wire, not yet acknowledged
    await once(device, 'disconnected')
    expect(device.queued).toBe(3)
    await eventually(async () => device.queued === 0 ? true : undefined, 10_000, 'queue drained after reconnect')
    expect(pubacked).toEqual([device.lastSeq - 2, device.lastSeq - 1, device.lastSeq])
    const stored = await eventually(async () => {
      const list = (await eventsOf(id)).filter((e) => e.type !== 'heartbeat')
      return list.length === 3 ? list : undefined
    }, 5000, 'three stored events')
    expect(stored.map((e) => Number(e.seq)).sort((a, b) => a - b)).toEqual(pubacked)
  })

  it('a kiosk shows report tickets and ward announcements in Vietnamese and English; cancelled and rejected acks are handled', async () => {
    const id = 'kiosk-fw-001'
    const { device, outputs } = makeDevice({ id, secret: await system.provision(id, { kind: 'kiosk' }), kind: 'kiosk' })
    await started(device)
    // Acks and announcements injected as the gateway delivers them, for the states not driven here.
    const deliver = (topic: string, payload: unknown, retain = false) => new Promise<void>((resolve, reject) =>
      system.gateway!.broker.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain, dup: false }, (err) => err ? reject(err) : resolve()))

    // The real path: the server files the report and its ticket id comes back in `received`.
    device.report('lighting', 'Đèn đường hỏng / street light out')
    const ticket = await eventually(async () => outputs.screens.find((m) => m.kind === 'ticket'), 10_000, 'ticket on screen')
    const filed = (await system.api<any[]>('GET', '/v1/reports')).body.find((r) => r.deviceId === id)
    expect(filed?.id).toMatch(/^R-/) // a report's id is its ticket id
    expect(ticket).toMatchObject({ ticketId: filed.id, text: { vi: expect.stringContaining(filed.id), en: expect.stringContaining(filed.id) } })
    expect(outputs.ledMode).toBe('off') // a report is not an emergency: the SOS light stays off

    await deliver(topics.announce('apd-1'), { id: 'ann-1', title: 'Cúp điện 14:00', body: 'Khu phố 1 cúp điện từ 14:00 đến 16:00', lang: 'vi', expiresAt: new Date(Date.now() + 3_600_000).toISOString() }, true)
    await deliver(topics.announce('apd-1'), { id: 'ann-0', title: 'Hết hạn', body: 'expired', lang: 'vi', expiresAt: new Date(Date.now() - 1000).toISOString() }, true)
    const shown = await eventually(async () => outputs.screens.find((m) => m.kind === 'announcement'), 5000, 'announcement on screen')
    expect(shown).toMatchObject({ id: 'ann-1', title: 'Cúp điện 14:00', text: { vi: 'Thông báo: Cúp điện 14:00', en: 'Announcement: Cúp điện 14:00' } })

    device.press()
    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 5000, 'LED blinking')
    const alertId = (await system.api<any[]>('GET', `/v1/alerts?deviceId=${id}`)).body[0].id
    await deliver(topics.ack(id), { seq: device.lastSeq, state: 'cancelled', alertId })
    await eventually(async () => outputs.ledMode === 'off' ? true : undefined, 5000, 'LED off on cancelled')
    expect(outputs.sounds.at(-1)).toBe('cancelled')

    const refused: string[] = []
    device.on('refused', (reason) => refused.push(reason))
    await deliver(topics.ack(id), { seq: 99, state: 'rejected', reason: 'invalid event: pin' })
    await eventually(async () => refused.length > 0 ? true : undefined, 5000, 'rejection reported')
    expect(refused[0]).toMatch(/event 99 rejected: invalid event: pin/)
    expect(outputs.screens.at(-1)).toMatchObject({ kind: 'status', text: { en: expect.stringContaining('call 113') } })
    expect(outputs.screens.filter((m) => m.kind === 'announcement')).toHaveLength(1) // the expired one was not shown
  })

  it('presses made while the gateway is down arrive in order once it is back', async () => {
    const id = 'btn-fw-003'
    const { device } = makeDevice({ id, secret: await system.provision(id) })
    await started(device)
    device.test()
    await eventually(async () => device.queued === 0 ? true : undefined, 5000, 'test event published')

    await system.stopGateway()
    if (device.connected) await once(device, 'disconnected')
    device.press()
    device.cancel('1234')
    device.press()
    device.tamper()
    device.press()
    expect(device.queued).toBe(5)
    const expected = Array.from({ length: 5 }, (_, i) => device.lastSeq - 4 + i)

    await system.startGateway()
    const arrived: number[] = []
    // As they reach the publish pipeline (a stored event is routed nowhere after it).
    const broker = system.gateway!.broker
    const authorizePublish = broker.authorizePublish.bind(broker)
    broker.authorizePublish = (client, packet, callback) => {
      if (client && parseDeviceTopic(packet.topic)?.kind === 'event') arrived.push(JSON.parse(packet.payload.toString()).seq)
      authorizePublish(client, packet, callback)
    }
    await eventually(async () => device.queued === 0 ? true : undefined, 10_000, 'queue drained after reconnect')
    expect(arrived).toEqual(expected)

    const stored = await eventually(async () => {
      const list = (await eventsOf(id)).filter((e) => expected.includes(Number(e.seq)))
      return list.length === 5 ? list : undefined
    }, 5000, 'five stored events')
    expect(stored.map((e) => e.type).sort()).toEqual(['cancel', 'press', 'press', 'press', 'tamper'])
  })
})
