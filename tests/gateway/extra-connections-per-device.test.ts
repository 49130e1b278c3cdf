/**
 * One device's secret cannot take the gateway's connection slots: its extra connections
 * (`{id}:{suffix}`, DESIGN §3) are capped per device (4 by default), the cap counted right
 * whatever closes them (an abrupt close, a take-over of the same client id, a rotated secret),
 * and at capacity a device's own connection still gets in where an extra one does not.
 * Real broker, real sockets, real MQTT.js clients.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

describe('extra connections per device', () => {
  let system: TestSystem
  const secrets = new Map<string, string>()
  const open: MqttClient[] = []
  const ids = ['btn-xc-a', 'btn-xc-b', 'btn-xc-c', 'btn-xc-d', 'btn-xc-e', 'btn-xc-f']

  /** Connects as `clientId` of device `id`, kept to be closed at the end. */
  const connect = async (clientId: string, id = clientId.split(':')[0]!) => {
    const client = await connectDevice(system.mqttUrl, clientId, id, secrets.get(id)!)
    open.push(client)
    return client
  }
  const refused = (reason: string) => metricValue(system.gateway, 'sos_gateway_connections_refused_total', { reason })
  const connections = () => system.gateway.broker.connectedClients
  const closeAll = async () => {
    await Promise.all(open.splice(0).map((c) => c.endAsync(true)))
    await eventually(async () => connections() === 0 || undefined, 10_000, 'every connection closed at the gateway')
  }

  beforeAll(async () => {
    // 20 slots: from 19 on, only devices' own connections are let in.
    system = await startSystem({ gateway: { maxConnections: 20, credentialRefreshMs: 300 } })
    for (const id of ids) secrets.set(id, await system.provision(id))
  })

  afterAll(async () => {
    for (const c of open) c.end(true)
    await system?.stop()
  })

  it('refuses a device\'s fifth extra connection (not authorized, counted), and keeps the count across closes, take-overs and a rotated secret', async () => {
    const [a, b] = ids as [string, string]
    await connect(a)
    const extras = await Promise.all([0, 1, 2, 3].map((i) => connect(`${a}:s${i}`)))
    await expect(connectDevice(system.mqttUrl, `${a}:s4`, a, secrets.get(a)!)).rejects.toThrow(/Not authorized/)
    expect(await refused('extra_connections')).toBe(1)
    // Per device: another device's own connection and its extras get in.
    await connect(b)
    await connect(`${b}:s0`)

    // The link of one extra dies without DISCONNECT: its slot comes back.
    extras[1]!.stream.destroy()
    await eventually(async () => connections() === 6 || undefined, 10_000, 'the dropped extra connection gone at the gateway')
    await connect(`${a}:s4`)
    await expect(connectDevice(system.mqttUrl, `${a}:s5`, a, secrets.get(a)!)).rejects.toThrow(/Not authorized/)

    // A tool reconnecting under a client id the device holds takes that id's place (aedes closes
    // the old one): not refused, and not one more slot held either.
    const replaced = new Promise<void>((resolve) => extras[2]!.once('close', () => resolve()))
    await connect(`${a}:s2`)
    await replaced
    await expect(connectDevice(system.mqttUrl, `${a}:s6`, a, secrets.get(a)!)).rejects.toThrow(/Not authorized/)
    expect(await refused('extra_connections')).toBe(3)

    // The secret rotated (it leaked): the connections made with the old one are let go, and
    // give back their slots, so the device's tools come back with the new one.
    const { body } = await system.api<{ secret: string }>('POST', `/v1/devices/${a}/secret`)
    secrets.set(a, body.secret)
    await connect(a) // the device itself, with its new secret, takes over its own client id
    // Left: A with its new secret, B and B's extra; the old primary went by rotation or take-over.
    await eventually(async () => connections() === 3 || undefined, 10_000, 'the connections of the old secret closed')
    expect(await metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'secret_rotated' })).toBeGreaterThanOrEqual(4)
    await Promise.all([0, 1, 2, 3].map((i) => connect(`${a}:n${i}`)))
    await expect(connectDevice(system.mqttUrl, `${a}:n4`, a, secrets.get(a)!)).rejects.toThrow(/Not authorized/)
    expect(await refused('extra_connections')).toBe(4)
    await closeAll()
  })

  it('keeps the last slots for devices\' own connections: at capacity a device gets in where an extra connection does not', async () => {
    const [a, b, c, d, e, f] = ids as [string, string, string, string, string, string]
    // 19 connections: three devices with their four extras each, and a fourth with three.
    for (const id of [a, b, c]) {
      await connect(id)
      for (let i = 0; i < 4; i++) await connect(`${id}:t${i}`)
    }
    await connect(d)
    for (let i = 0; i < 3; i++) await connect(`${d}:t${i}`)
    expect(connections()).toBe(19)
    const refusedBefore = await refused('max_connections')

    // D may hold a fourth extra connection, but not in the slots kept for devices.
    await expect(connectDevice(system.mqttUrl, `${d}:t3`, d, secrets.get(d)!)).rejects.toThrow(/Server unavailable/)
    // A device's own connection takes the last slot.
    await connect(e)
    expect(connections()).toBe(20)
    // Full now: nobody else.
    await expect(connectDevice(system.mqttUrl, f, f, secrets.get(f)!)).rejects.toThrow(/Server unavailable/)
    expect(await refused('max_connections')).toBe(refusedBefore + 2)
    expect(await refused('extra_connections')).toBe(4)
    await closeAll()
  })
})
