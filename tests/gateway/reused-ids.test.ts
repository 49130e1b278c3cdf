/**
 * A device that repeats its event ids (a board reset without a new `boot`) while the server is
 * away: its new press shares an id with an event still waiting in the gateway's outbox. The
 * outbox once took it for a QoS 1 redelivery of that event, PUBACKed it and dropped it: the
 * press never reached the server. The server half (telling the two apart when both arrive) is
 * tests/server/reused-ids.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { startRecordingProxy, type RecordingProxy } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

const id = 'btn-reuse-001'

describe('a device repeating its event ids while the server is away', () => {
  let proxy: RecordingProxy
  let system: TestSystem
  let device: MqttClient
  let acks: Awaited<ReturnType<typeof ackCollector>>

  beforeAll(async () => {
    system = await startSystem({ gatewayServerUrl: async (url) => (proxy = await startRecordingProxy(url)).url })
    const secret = await system.provision(id)
    device = await connectDevice(system.mqttUrl, id, id, secret)
    acks = await ackCollector(device, id)
  })

  afterAll(async () => {
    await device?.endAsync()
    await system?.stop()
    await proxy?.close()
  })

  it('keeps its press beside the old event holding the same id, and stores and answers both once', async () => {
    proxy.down = true
    const t0 = Date.now()
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'heartbeat', ts: t0 - 60_000 }), { qos: 1 })
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 2, type: 'heartbeat', ts: t0 - 30_000 }), { qos: 1 })
    // The board resets and counts from 1 again, with no new boot.
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press', ts: t0 }), { qos: 1 })
    // MQTT.js resends on reconnect; a redelivery of the press itself stays one event.
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press', ts: t0 }), { qos: 1 })
    expect(system.gateway.outbox.depth(), 'two heartbeats and the press waiting').toBe(3)

    proxy.down = false
    const received = await acks.waitFor((a) => a.seq === 1 && a.state === 'received', 30_000)
    expect(received.alertId).toBeTruthy()
    await eventually(async () => system.gateway.outbox.depth() === 0 ? true : undefined, 30_000, 'outbox drained')
    const { body: events } = await system.api('GET', `/v1/events?deviceId=${id}`)
    expect((events as any[]).map((e) => [e.seq, e.type]).sort()).toEqual([[1, 'heartbeat'], [1, 'press'], [2, 'heartbeat']])
    const { body: alerts } = await system.api('GET', `/v1/alerts?kind=panic`)
    expect((alerts as any[]).filter((a) => a.deviceId === id)).toHaveLength(1)
  })
})
