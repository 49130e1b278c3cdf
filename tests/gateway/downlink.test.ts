/**
 * Downlink over real sockets: `received` and `acknowledged` reach a subscribed device; a
 * device with a persistent session (clean=false) that was away gets the ack it missed; a
 * kiosk that connects later gets the retained announcement it missed, also after a gateway
 * restart.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

/** Connects with handlers attached before CONNACK, so messages queued in the session are not missed. */
function connectCollecting (url: string, id: string, secret: string, clean: boolean): Promise<{ client: MqttClient, messages: Array<{ topic: string, body: any }> }> {
  const messages: Array<{ topic: string, body: any }> = []
  const client = mqtt.connect(url, { clientId: id, username: id, password: secret, clean, protocolVersion: 4, reconnectPeriod: 0 })
  client.on('message', (topic, payload) => messages.push({ topic, body: JSON.parse(payload.toString()) }))
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve({ client, messages }))
    client.once('error', reject)
  })
}

describe('downlink', () => {
  let system: TestSystem

  beforeAll(async () => {
    system = await startSystem({ gateway: { downlinkWaitMs: 300 } })
  })

  afterAll(async () => {
    await system?.stop()
  })

  it('delivers received, then acknowledged after the device was away (persistent session)', async () => {
    const id = 'btn-down-001'
    const secret = await system.provision(id)
    const first = await connectCollecting(system.mqttUrl, id, secret, false)
    await first.client.subscribeAsync(topics.ack(id), { qos: 1 })
    await first.client.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    const received = await eventually(async () => first.messages.find((m) => m.body.state === 'received'), 15_000, 'received')
    expect(received.body).toMatchObject({ seq: 1, state: 'received' })
    await first.client.endAsync()

    // While the device is away, an operator acknowledges.
    const acksBefore = await metricValue(system.gateway, 'sos_gateway_downlink_published_total', { kind: 'ack' })
    const { status } = await system.api('POST', `/v1/alerts/${received.body.alertId}/acknowledge`, { note: 'on our way' })
    expect(status).toBe(200)
    await eventually(async () => await metricValue(system.gateway, 'sos_gateway_downlink_published_total', { kind: 'ack' }) > acksBefore ? true : undefined, 15_000, 'ack relayed')

    // Back, same session, no new SUBSCRIBE: the broker hands over what it kept.
    const again = await connectCollecting(system.mqttUrl, id, secret, false)
    const acknowledged = await eventually(async () => again.messages.find((m) => m.body.state === 'acknowledged'), 15_000, 'acknowledged after reconnect')
    expect(acknowledged.body).toMatchObject({ seq: 1, state: 'acknowledged', alertId: received.body.alertId })
    await again.client.endAsync()
  })

  it('gives a kiosk that connects later the retained announcement it missed, also after a gateway restart', async () => {
    const id = 'ksk-down-001'
    const secret = await system.provision(id, { kind: 'kiosk', zone: 'apd-3' })
    const announcement = { id: 'ann-1', title: 'Cúp điện', body: 'Mất điện khu phố 3 từ 8h đến 11h', lang: 'vi', expiresAt: '2030-01-01T00:00:00Z' }
    const before = await metricValue(system.gateway, 'sos_gateway_downlink_published_total', { kind: 'announce' })
    // What the server's announcements endpoint writes: a retained message in the downlink queue.
    await system.server.db.query('INSERT INTO downlink (topic, payload, retain) VALUES ($1, $2::jsonb, true)', [topics.announce('apd-3'), JSON.stringify(announcement)])
    await eventually(async () => await metricValue(system.gateway, 'sos_gateway_downlink_published_total', { kind: 'announce' }) > before ? true : undefined, 15_000, 'announcement relayed')

    const kiosk = await connectDevice(system.mqttUrl, id, id, secret)
    const got = new Promise<any>((resolve) => kiosk.once('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))))
    await kiosk.subscribeAsync(topics.announce('apd-3'), { qos: 1 })
    expect(await got).toEqual(announcement)
    await kiosk.endAsync()

    await system.restartGateway()
    const after = await connectDevice(system.mqttUrl, id, id, secret)
    const gotAgain = new Promise<any>((resolve) => after.once('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))))
    await after.subscribeAsync(topics.announce('apd-3'), { qos: 1 })
    expect(await gotAgain).toEqual(announcement)
    await after.endAsync()
  })

  it('lets a second connection of the device (id:suffix) listen to the acks', async () => {
    const id = 'btn-down-002'
    const secret = await system.provision(id)
    const listener = await connectDevice(system.mqttUrl, `${id}:tool`, id, secret)
    const acks = await ackCollector(listener, id)
    const device = await connectDevice(system.mqttUrl, id, id, secret)
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 3, type: 'press' }), { qos: 1 })
    expect(await acks.waitFor((a) => a.state === 'received' && a.seq === 3, 15_000)).toMatchObject({ state: 'received' })
    await device.endAsync()
    await listener.endAsync()
  })
})
