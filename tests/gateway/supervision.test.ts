/**
 * Supervision in real time with short intervals, over real sockets: a device that stops
 * heartbeating and devices whose connection drops (will, clean disconnect) are reported
 * offline to the server (`presence` in the ingest batch, seen through a recording proxy),
 * with the gateway's retained status following; a device that comes back is online again.
 * The server's `device_offline` alert for these is in supervision-e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics, type PresenceChange } from '../../protocol/index.js'
import { metricValue, retainedMessages, startRecordingProxy } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

const INTERVAL_MS = 400

describe('supervision (real time, short intervals)', () => {
  let system: TestSystem
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>
  const secrets = new Map<string, string>()
  const clients: MqttClient[] = []

  const presenceSent = () => proxy.batches.flatMap((b) => b.presence ?? [])
  const waitForPresence = (deviceId: string, match: Partial<PresenceChange>) => eventually(async () =>
    presenceSent().find((p) => p.deviceId === deviceId && Object.entries(match).every(([k, v]) => (p as any)[k] === v)), 20_000,
  `${deviceId} ${JSON.stringify(match)} sent to the server`)
  const connect = async (id: string, extra = {}) => {
    const client = await connectDevice(system.mqttUrl, id, id, secrets.get(id)!, extra)
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    system = await startSystem({
      // Kiosks get a long interval: their tests are about dropped connections, not silence.
      gateway: { heartbeatIntervalsMs: { button: INTERVAL_MS, kiosk: 60_000, counter: INTERVAL_MS }, reconnectGraceMs: 100 },
      gatewayServerUrl: async (url) => { proxy = await startRecordingProxy(url); return proxy.url }
    })
    secrets.set('btn-sup-quiet', await system.provision('btn-sup-quiet'))
    for (const id of ['ksk-sup-will', 'ksk-sup-bye']) secrets.set(id, await system.provision(id, { kind: 'kiosk' }))
  })

  afterAll(async () => {
    for (const c of clients) c.end(true)
    await system?.stop()
    await proxy?.close()
  })

  it('reports a device that stops heartbeating offline (heartbeat_missed), and online when it is heard again', async () => {
    const id = 'btn-sup-quiet'
    const device = await connect(id)
    await waitForPresence(id, { state: 'online', reason: 'connected' })
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 })
    // …and then nothing: the connection stays open, the firmware is stuck.
    const offline = await waitForPresence(id, { state: 'offline', reason: 'heartbeat_missed' })
    expect(offline.gatewayId).toBe('gw-test')
    expect(await retainedMessages(system.gateway.broker, topics.status(id))).toEqual([{ topic: topics.status(id), payload: 'offline' }])

    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 2, type: 'heartbeat' }), { qos: 1 })
    const back = await eventually(async () => presenceSent().filter((p) => p.deviceId === id).at(-1)?.state === 'online' ? true : undefined, 20_000, 'back online')
    expect(back).toBe(true)
    expect(await retainedMessages(system.gateway.broker, topics.status(id))).toEqual([{ topic: topics.status(id), payload: 'online' }])
  })

  it('reports a device whose connection drops offline with reason will, and holds nothing against its QoS 1 will', async () => {
    const id = 'ksk-sup-will'
    const will = { topic: topics.status(id), payload: Buffer.from('offline'), qos: 1 as const, retain: true }
    const device = await connect(id, { clean: false, will })
    await device.subscribeAsync(topics.ack(id), { qos: 1 })
    await waitForPresence(id, { state: 'online' })
    // The link dies without DISCONNECT (power cut, cable pulled): the broker fires the will.
    ;(device as unknown as { stream: { destroy(): void } }).stream.destroy()
    await waitForPresence(id, { state: 'offline', reason: 'will' })
    expect(await retainedMessages(system.gateway.broker, topics.status(id))).toEqual([{ topic: topics.status(id), payload: 'offline' }])
    // A will has no packet id (the broker publishes it); it used to be refused as a packet with
    // id 0: a dead letter per lost link, and `rejected` waiting for the kiosk's next session,
    // which showed "could not send" after every network blip.
    expect((await system.gateway.deadLetters.recent()).filter((l) => l.deviceId === id)).toEqual([])
    const heard: string[] = []
    const back = await connect(id, { clean: false, will })
    back.on('message', (_topic, payload) => heard.push(payload.toString()))
    await back.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'test' }), { qos: 1 })
    await eventually(async () => heard.some((m) => JSON.parse(m).state === 'received') || undefined, 20_000, 'received for the event after reconnecting')
    expect(heard.map((m) => JSON.parse(m).state)).not.toContain('rejected')
  })

  it('reports a device that disconnects cleanly offline with reason disconnected', async () => {
    const id = 'ksk-sup-bye'
    const device = await connect(id)
    await waitForPresence(id, { state: 'online' })
    await device.endAsync()
    await waitForPresence(id, { state: 'offline', reason: 'disconnected' })
    expect(system.gateway.supervisor.stateOf(id)).toBe('offline')
    expect(await metricValue(system.gateway, 'sos_gateway_presence_changes_total', { state: 'offline' })).toBeGreaterThanOrEqual(3)
  })
})
