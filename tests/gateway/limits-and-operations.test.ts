/**
 * Limits and operations over real sockets: the bounded outbox policy while the server is
 * away (heartbeats shed first, alarms never dropped, full → metric, health and batch flag),
 * the per-device rate limit (heartbeat floods shed and counted, presses all kept),
 * maxConnections, and the gateway's health and Prometheus endpoint.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue, startRecordingProxy, type RecordingProxy } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

const event = (seq: number, type: string) => JSON.stringify({ seq, type })

describe('bounded outbox while the server is away', () => {
  let system: TestSystem
  let proxy: RecordingProxy
  let device: MqttClient
  const id = 'btn-full-001'

  beforeAll(async () => {
    system = await startSystem({
      gateway: { outboxMaxEvents: 5, rateLimit: { burst: 1000, perSecond: 1000 } },
      gatewayServerUrl: async (url) => { proxy = await startRecordingProxy(url); return proxy.url }
    })
    device = await connectDevice(system.mqttUrl, id, id, await system.provision(id))
  })

  afterAll(async () => {
    device?.end(true)
    await system?.stop()
    await proxy?.close()
  })

  it('sheds heartbeats first, never drops an alarm, and says it is full', async () => {
    const acks = await ackCollector(device, id)
    proxy.down = true
    for (let seq = 1; seq <= 5; seq++) await device.publishAsync(topics.event(id), event(seq, 'heartbeat'), { qos: 1 })
    expect(system.gateway.outbox.depth()).toBe(5)
    expect(system.gateway.outbox.full).toBe(true)
    expect(await metricValue(system.gateway, 'sos_gateway_outbox_full')).toBe(1)

    // Presses evict the oldest heartbeats, then go past the bound: an alarm is never dropped.
    for (let seq = 6; seq <= 13; seq++) await device.publishAsync(topics.event(id), event(seq, 'press'), { qos: 1 })
    expect(system.gateway.outbox.depth()).toBe(8)
    expect(await metricValue(system.gateway, 'sos_gateway_outbox_evicted_total')).toBe(5)

    // Routine events are acknowledged but shed while full; the device hears why (not for heartbeats).
    await device.publishAsync(topics.event(id), event(14, 'battery_low'), { qos: 1 })
    await device.publishAsync(topics.event(id), event(15, 'heartbeat'), { qos: 1 })
    expect(await acks.waitFor((a) => a.seq === 14, 15_000)).toMatchObject({ state: 'rejected', reason: 'outbox_full' })
    expect(await metricValue(system.gateway, 'sos_gateway_events_shed_total', { reason: 'outbox_full' })).toBe(2)
    expect(system.gateway.outbox.depth()).toBe(8)

    const health = await (await fetch(`http://127.0.0.1:${system.gateway.ports.http}/healthz`)).json() as any
    expect(health).toMatchObject({ outboxFull: true, outboxDepth: 8 })
    // The server hears it too (the batch carries the gateway's health), even while it refuses.
    await eventually(async () => proxy.batches.some((b) => b.gateway?.outboxFull === true) ? true : undefined, 30_000, 'batch flagged outboxFull')

    proxy.down = false
    await eventually(async () => system.gateway.outbox.depth() === 0 ? true : undefined, 60_000, 'outbox drained')
    const { body: stored } = await system.api('GET', `/v1/events?deviceId=${id}&type=press`)
    expect((stored as any[]).map((e) => e.seq).sort((x, y) => x - y)).toEqual([6, 7, 8, 9, 10, 11, 12, 13])
    expect(system.gateway.outbox.full).toBe(false)
    expect(await metricValue(system.gateway, 'sos_gateway_outbox_full')).toBe(0)
  })
})

describe('rate limit, connection limit, operations endpoint', () => {
  let system: TestSystem
  const id = 'btn-flood-001'
  let secret: string
  let device: MqttClient

  beforeAll(async () => {
    system = await startSystem({ gateway: { rateLimit: { burst: 5, perSecond: 0.001 }, maxConnections: 2 } })
    secret = await system.provision(id)
    device = await connectDevice(system.mqttUrl, id, id, secret)
  })

  afterAll(async () => {
    device?.end(true)
    await system?.stop()
  })

  it('sheds and counts a heartbeat flood but keeps every press in it', async () => {
    const acks = await ackCollector(device, id)
    const sends: Array<Promise<unknown>> = []
    for (let seq = 1; seq <= 60; seq++) {
      sends.push(device.publishAsync(topics.event(id), event(seq, seq % 10 === 0 ? 'press' : 'heartbeat'), { qos: 1 }))
    }
    await Promise.all(sends) // every publish was PUBACKed: the device stops resending
    const presses = [10, 20, 30, 40, 50, 60]
    await acks.waitFor((a) => a.state === 'received' && a.seq === 60, 15_000)
    // Presses travel the alarm lane, heartbeats the routine one: wait for both.
    const stored = await eventually(async () => {
      const { body } = await system.api('GET', `/v1/events?deviceId=${id}&limit=1000`)
      const rows = body as any[]
      return rows.filter((e) => e.type === 'press').length === presses.length && rows.filter((e) => e.type === 'heartbeat').length >= 5 ? rows : undefined
    }, 15_000, 'all presses and the heartbeats within the bucket stored')
    expect(stored.filter((e) => e.type === 'press').map((e) => e.seq).sort((x, y) => x - y)).toEqual(presses)
    expect(stored.filter((e) => e.type === 'heartbeat')).toHaveLength(5)
    expect(await metricValue(system.gateway, 'sos_gateway_events_shed_total', { type: 'heartbeat', reason: 'rate_limited' })).toBe(54 - 5)
    // A flood of heartbeats is not answered one rejection each.
    expect(acks.acks.filter((a) => a.state === 'rejected')).toEqual([])
    // …and all presses joined one alert.
    const { body: alerts } = await system.api('GET', `/v1/alerts?deviceId=${id}`)
    expect(alerts).toHaveLength(1)
    expect(alerts[0].pressCount).toBe(presses.length)
  })

  it('refuses connections beyond maxConnections', async () => {
    const second = await connectDevice(system.mqttUrl, `${id}:two`, id, secret)
    await expect(connectDevice(system.mqttUrl, `${id}:three`, id, secret)).rejects.toThrow(/Server unavailable/)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_refused_total', { reason: 'max_connections' })).toBe(1)
    await second.endAsync()
  })

  it('serves health, readiness and Prometheus metrics over HTTP', async () => {
    const base = `http://127.0.0.1:${system.gateway.ports.http}`
    const health = await fetch(`${base}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok', ready: true, gatewayId: 'gw-test', outboxFull: false })
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
    const metrics = await fetch(`${base}/metrics`)
    expect(metrics.headers.get('content-type')).toMatch(/text\/plain/)
    const text = await metrics.text()
    for (const name of ['sos_gateway_connections', 'sos_gateway_events_in_total', 'sos_gateway_events_accepted_total', 'sos_gateway_outbox_depth',
      'sos_gateway_outbox_oldest_age_seconds', 'sos_gateway_puback_latency_seconds_bucket', 'sos_gateway_forward_latency_seconds_bucket',
      'sos_gateway_downlink_published_total', 'sos_gateway_devices_online',
      // The process's own, collected once per process.
      'sos_gateway_process_process_cpu_user_seconds_total', 'sos_gateway_process_nodejs_eventloop_lag_seconds']) {
      expect(text, name).toContain(name)
    }
    expect(text).toMatch(/sos_gateway_events_accepted_total\{type="press"\} 6/)
    expect((await fetch(`${base}/nope`)).status).toBe(404)
  })
})
