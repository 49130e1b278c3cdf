/**
 * Babbling-device shutdown (gateway/babbling-devices.ts), as a panel shuts down a swinger zone:
 * a device whose publishes are refused without pause is disconnected and refused at CONNECT for
 * a while, so its flood stops taking the event loop from every other device's press. A device
 * refused now and then is left alone; the shutdown ends by itself. Real broker, real sockets,
 * real MQTT.js clients; a small bar so the test sends little.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { topics } from '../../protocol/index.js'
import { BabblingDevices } from '../../gateway/babbling-devices.js'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

describe('BabblingDevices', () => {
  it('shuts a device down at the bar within one window, holds it off, then lets it back; each device apart', () => {
    let now = 0
    const babbling = new BabblingDevices({ refusals: 5, windowMs: 1000, holdOffMs: 3000 }, () => now)
    // Four refused, the window ends, four more: never five within one window.
    for (let i = 0; i < 4; i++) expect(babbling.refused('a')).toBe(false)
    now = 1000
    for (let i = 0; i < 4; i++) expect(babbling.refused('a')).toBe(false)
    expect(babbling.heldOff('a')).toBe(false)
    expect(babbling.refused('a')).toBe(true)
    expect(babbling.heldOff('a')).toBe(true)
    expect(babbling.heldOff('b')).toBe(false)
    now = 3999
    expect(babbling.heldOff('a')).toBe(true)
    now = 4000
    expect(babbling.heldOff('a')).toBe(false)
    // Back, it starts a new count.
    for (let i = 0; i < 4; i++) expect(babbling.refused('a')).toBe(false)
  })

  it('never shuts a device down with a bar of 0', () => {
    const babbling = new BabblingDevices({ refusals: 0, windowMs: 1000, holdOffMs: 3000 }, () => 0)
    for (let i = 0; i < 10_000; i++) expect(babbling.refused('a')).toBe(false)
    expect(babbling.heldOff('a')).toBe(false)
  })
})

describe('babbling-device shutdown at the gateway', () => {
  let system: TestSystem
  const secrets = new Map<string, string>()
  const open: MqttClient[] = []
  const connect = async (id: string, clientId = id) => {
    const client = await connectDevice(system.mqttUrl, clientId, id, secrets.get(id)!)
    open.push(client)
    return client
  }
  const junk = (client: MqttClient, id: string, count: number) => Promise.allSettled(Array.from({ length: count }, (_, i) =>
    client.publishAsync(topics.event(id), `{"seq":${i + 1},"type":"pr`, { qos: 1 })))

  beforeAll(async () => {
    system = await startSystem({ gateway: { babblingShutdown: { refusals: 50, windowMs: 10_000, holdOffMs: 3000 } } })
    for (const id of ['btn-babble', 'btn-quiet', 'btn-now-and-then']) secrets.set(id, await system.provision(id))
  })

  afterAll(async () => {
    for (const c of open) c.end(true)
    await system?.stop()
  })

  it('disconnects a device spraying junk, refuses it for the hold-off (server unavailable), and lets it back after; others press on', async () => {
    const babbler = await connect('btn-babble')
    const extra = await connect('btn-babble', 'btn-babble:tool')
    const quiet = await connect('btn-quiet')
    const closed = Promise.all([babbler, extra].map((c) => new Promise<void>((resolve) => c.once('close', () => resolve()))))
    void junk(babbler, 'btn-babble', 60)
    // Both of its connections are closed, and it is counted.
    await closed
    expect(await metricValue(system.gateway, 'sos_gateway_devices_shut_down_total')).toBe(1)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'babbling' })).toBe(2)
    // Refused at CONNECT while held off: "server unavailable", come back later.
    await expect(connectDevice(system.mqttUrl, 'btn-babble', 'btn-babble', secrets.get('btn-babble')!)).rejects.toThrow(/Server unavailable/)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_refused_total', { reason: 'babbling' })).toBe(1)
    // Another device is not touched: its press is taken and answered.
    const acks = await ackCollector(quiet, 'btn-quiet')
    await quiet.publishAsync(topics.event('btn-quiet'), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    await acks.waitFor((a) => a.seq === 1 && a.state === 'received', 10_000)
    expect(quiet.connected).toBe(true)
    // After the hold-off it connects, and its press is taken.
    const back = await eventually(async () => connectDevice(system.mqttUrl, 'btn-babble', 'btn-babble', secrets.get('btn-babble')!).catch(() => undefined), 10_000, 'the device let back after its hold-off')
    open.push(back)
    const backAcks = await ackCollector(back, 'btn-babble')
    await back.publishAsync(topics.event('btn-babble'), JSON.stringify({ seq: 100, type: 'press' }), { qos: 1 })
    await backAcks.waitFor((a) => a.seq === 100 && a.state === 'received', 10_000)
  })

  it('leaves a device alone whose publishes are refused below the bar', async () => {
    const client = await connect('btn-now-and-then')
    await junk(client, 'btn-now-and-then', 40)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(client.connected).toBe(true)
    expect(await metricValue(system.gateway, 'sos_gateway_devices_shut_down_total')).toBe(1)
  })
})
