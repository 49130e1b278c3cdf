/**
 * Babbling-connection shutdown (gateway/babbling-connections.ts), after a panel's swinger
 * shutdown: a connection whose publishes are refused without pause is closed and its client id
 * refused at CONNECT for a hold-off, so its flood stops taking the event loop from every other
 * device's press. The hold-off is short at first (a device's own alarm waits little behind it)
 * and doubles only while it babbles on; it is kept per client id (a service tool that babbles is
 * held off, not the device); heartbeats dropped over the rate limit do not count (a firmware's
 * backlog after an outage is no babble). Real broker, real sockets, real MQTT.js clients; a
 * small bar so the test sends little.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { topics } from '../../protocol/index.js'
import { BabblingConnections } from '../../gateway/babbling-connections.js'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

describe('BabblingConnections', () => {
  const options = { refusals: 5, windowMs: 1000, firstHoldOffMs: 500, holdOffMs: 3000, rememberMs: 10_000 }

  it('shuts a connection down at the bar within one window, holds it off, then lets it back; each client id apart', () => {
    let now = 0
    const babbling = new BabblingConnections(options, () => now)
    // Four refused, the window ends, four more: never five within one window.
    for (let i = 0; i < 4; i++) expect(babbling.refused('a')).toBe(0)
    now = 1000
    for (let i = 0; i < 4; i++) expect(babbling.refused('a')).toBe(0)
    expect(babbling.heldOffFor('a')).toBe(0)
    expect(babbling.refused('a')).toBe(500)
    expect(babbling.heldOffFor('a')).toBe(500)
    expect(babbling.heldOffFor('a:tool')).toBe(0)
    expect(babbling.heldOffCount()).toBe(1)
    // The rest of a read already under way is not counted again.
    for (let i = 0; i < 20; i++) expect(babbling.refused('a')).toBe(0)
    now = 1499
    expect(babbling.heldOffFor('a')).toBe(1)
    now = 1500
    expect(babbling.heldOffFor('a')).toBe(0)
    expect(babbling.heldOffCount()).toBe(0)
  })

  it('doubles the hold-off while the same client id babbles on, up to the longest, and starts short again once it has calmed', () => {
    let now = 0
    const babbling = new BabblingConnections(options, () => now)
    const babble = () => { let held = 0; for (let i = 0; i < 5; i++) held = babbling.refused('a'); now += held; return held }
    expect([babble(), babble(), babble(), babble(), babble()]).toEqual([500, 1000, 2000, 3000, 3000])
    now += 10_000
    expect(babble()).toBe(500)
  })

  it('never shuts a connection down with a bar of 0', () => {
    const babbling = new BabblingConnections({ ...options, refusals: 0 }, () => 0)
    for (let i = 0; i < 10_000; i++) expect(babbling.refused('a')).toBe(0)
    expect(babbling.heldOffFor('a')).toBe(0)
  })
})

describe('babbling-connection shutdown at the gateway', () => {
  let system: TestSystem
  const secrets = new Map<string, string>()
  const open: MqttClient[] = []
  const connect = async (id: string, clientId = id) => {
    const client = await connectDevice(system.mqttUrl, clientId, id, secrets.get(id)!)
    open.push(client)
    return client
  }
  const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()))
  const junk = (client: MqttClient, id: string, count: number) => Promise.allSettled(Array.from({ length: count }, (_, i) =>
    client.publishAsync(topics.event(id), `{"seq":${i + 1},"type":"pr`, { qos: 1 })))
  const press = async (client: MqttClient, id: string, seq: number) => {
    const acks = await ackCollector(client, id)
    await client.publishAsync(topics.event(id), JSON.stringify({ seq, type: 'press' }), { qos: 1 })
    await acks.waitFor((a) => a.seq === seq && a.state === 'received', 10_000)
  }

  beforeAll(async () => {
    system = await startSystem({ gateway: { babblingShutdown: { refusals: 50, windowMs: 10_000, firstHoldOffMs: 1500, holdOffMs: 3000, rememberMs: 60_000 } } })
    for (const id of ['btn-babble', 'btn-tool', 'btn-quiet', 'btn-backlog', 'btn-now-and-then']) secrets.set(id, await system.provision(id))
  })

  afterAll(async () => {
    for (const c of open) c.end(true)
    await system?.stop()
  })

  it('closes a connection spraying junk, refuses it while held off (server unavailable), and takes its press once it is back; others press on', async () => {
    const babbler = await connect('btn-babble')
    const quiet = await connect('btn-quiet')
    const gone = closed(babbler)
    void junk(babbler, 'btn-babble', 60)
    await gone
    const shutAt = Date.now()
    expect(await metricValue(system.gateway, 'sos_gateway_babbling_shutdowns_total')).toBe(1)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'babbling' })).toBe(1)
    expect(await metricValue(system.gateway, 'sos_gateway_babbling_held_off')).toBe(1)
    // Refused at CONNECT while held off: "server unavailable", come back later.
    await expect(connectDevice(system.mqttUrl, 'btn-babble', 'btn-babble', secrets.get('btn-babble')!)).rejects.toThrow(/Server unavailable/)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_refused_total', { reason: 'babbling' })).toBe(1)
    // Another device is not touched.
    await press(quiet, 'btn-quiet', 1)
    expect(quiet.connected).toBe(true)
    // A person presses on the babbling device meanwhile: its firmware retries at an alarm's pace,
    // is let back after the first, short hold-off, and the press is taken.
    const back = await eventually(async () => connectDevice(system.mqttUrl, 'btn-babble', 'btn-babble', secrets.get('btn-babble')!).catch(() => undefined), 10_000, 'the device let back after its hold-off')
    open.push(back)
    expect(Date.now() - shutAt).toBeLessThan(3000)
    await press(back, 'btn-babble', 100)
    // The server is told, where the ward's admins look for what a device did wrong.
    const told = await eventually(async () => {
      const { body } = await system.api<any[]>('GET', '/v1/dead-letters?deviceId=btn-babble&limit=1000')
      return body.find((d) => /^babbling: 50 publishes refused within 10 s; connection btn-babble closed and refused at CONNECT for 1.5 s$/.test(d.reason))
    }, 10_000, 'the shutdown told to the server as a dead letter')
    expect(JSON.parse(Buffer.from(told.payload, 'base64').toString())).toEqual({ clientId: 'btn-babble', heldOffS: 1.5 })
  })

  it('holds off a service tool\'s connection that babbles, not the device\'s own', async () => {
    const own = await connect('btn-tool')
    const tool = await connect('btn-tool', 'btn-tool:service')
    const gone = closed(tool)
    void junk(tool, 'btn-tool', 60)
    await gone
    await expect(connectDevice(system.mqttUrl, 'btn-tool:service', 'btn-tool', secrets.get('btn-tool')!)).rejects.toThrow(/Server unavailable/)
    expect(own.connected).toBe(true)
    await press(own, 'btn-tool', 1)
  })

  it('does not count heartbeats dropped over the rate limit: a firmware\'s backlog after an outage is no babble', async () => {
    const client = await connect('btn-backlog')
    await Promise.all(Array.from({ length: 300 }, (_, i) => client.publishAsync(topics.event('btn-backlog'), JSON.stringify({ seq: i + 1, type: 'heartbeat' }), { qos: 1 })))
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(client.connected).toBe(true)
    await press(client, 'btn-backlog', 1000)
  })

  it('leaves a connection alone whose publishes are refused below the bar', async () => {
    const before = await metricValue(system.gateway, 'sos_gateway_babbling_shutdowns_total')
    const client = await connect('btn-now-and-then')
    await junk(client, 'btn-now-and-then', 40)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(client.connected).toBe(true)
    expect(await metricValue(system.gateway, 'sos_gateway_babbling_shutdowns_total')).toBe(before)
  })
})
