/**
 * End to end: a device that goes silent and one whose connection drops each raise a
 * `device_offline` alert on the server (GET /v1/alerts?kind=device_offline). This needs the
 * server to act on `presence` in ingest batches (the server branch); the gateway half is
 * covered on its own in supervision.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

describe('device_offline alerts end to end', () => {
  let system: TestSystem
  const clients: MqttClient[] = []

  beforeAll(async () => {
    system = await startSystem({ gateway: { heartbeatIntervalsMs: { button: 400, kiosk: 60_000, counter: 400 }, reconnectGraceMs: 100 } })
  })

  afterAll(async () => {
    for (const c of clients) c.end(true)
    await system?.stop()
  })

  const offlineAlertOf = (deviceId: string) => eventually(async () => {
    const { body } = await system.api('GET', '/v1/alerts?kind=device_offline')
    return (body as any[]).find((a) => a.deviceId === deviceId)
  }, 20_000, `device_offline alert for ${deviceId}`)

  it('raises device_offline for a device that stops heartbeating', async () => {
    const id = 'btn-e2e-quiet'
    const device = await connectDevice(system.mqttUrl, id, id, await system.provision(id))
    clients.push(device)
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 })
    const alert = await offlineAlertOf(id)
    expect(alert.kind).toBe('device_offline')
  })

  it('raises device_offline for a device whose connection drops', async () => {
    const id = 'ksk-e2e-drop'
    const device = await connectDevice(system.mqttUrl, id, id, await system.provision(id, { kind: 'kiosk' }), {
      will: { topic: topics.status(id), payload: Buffer.from('offline'), qos: 1, retain: true }
    })
    clients.push(device)
    await eventually(async () => system.gateway.supervisor.stateOf(id) === 'online' ? true : undefined, 10_000, 'online')
    ;(device as unknown as { stream: { destroy(): void } }).stream.destroy()
    const alert = await offlineAlertOf(id)
    expect(alert.kind).toBe('device_offline')
  })
})
