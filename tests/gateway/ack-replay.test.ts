/**
 * A device away when its alert changes state hears the newest state when it is back: after a
 * gateway restart (aedes keeps sessions in memory, and the relay publishes what the server
 * queued before the devices reconnect), and through another gateway. Until then the pedestrian's
 * button blinked "received" while help was on its way.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import Sqlite from 'better-sqlite3'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { eventually, quietLog, startSystem, type TestSystem } from '../helpers/system.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import { AckReplay } from '../../gateway/ack-replay.js'
import { openStateDb } from '../../gateway/state-db.js'
import { StateWriter } from '../../gateway/state-writer.js'
import { topics, type Ack } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

interface Device { client: MqttClient, heard: Ack[] }

/** Connects as firmware does (persistent session; a tool's clean), subscribed to its acks, recording them. */
async function connectDevice (url: string, clientId: string, id: string, secret: string, qos: 0 | 1 = 1): Promise<Device> {
  const heard: Ack[] = []
  const client = await mqtt.connectAsync(url, { clientId, username: id, password: secret, clean: clientId !== id, protocolVersion: 4, reconnectPeriod: 0 })
  client.on('message', (_topic, payload) => heard.push(JSON.parse(payload.toString())))
  await client.subscribeAsync(topics.ack(id), { qos })
  return { client, heard }
}

/** Gone without a word, as a device whose link dropped. */
async function dropLink (device: Device): Promise<void> {
  device.client.stream.destroy()
  await new Promise((resolve) => setTimeout(resolve, 300))
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('alert states a device missed', () => {
  let system: TestSystem
  let second: RunningGateway
  let secondDir: string

  beforeAll(async () => {
    system = await startSystem({ gateway: { downlinkWaitMs: 300 } })
    const { body } = await system.api('POST', '/v1/tokens', { role: 'gateway', name: 'gw-second' })
    secondDir = mkdtempSync(join(tmpdir(), 'sos-gw2-'))
    second = await startGateway({
      gatewayId: 'gw-second', mqttHost: '127.0.0.1', mqttPort: 0, mqttWsPort: 0, dataDir: secondDir, serverUrl: system.server.url,
      gatewayToken: body.token, credentialRefreshMs: 30_000, forwardBatchSize: 500, logLevel: 'silent', downlinkWaitMs: 300
    }, quietLog)
  })

  afterAll(async () => {
    await second?.stop()
    await system?.stop()
    rmSync(secondDir, { recursive: true, force: true })
  })

  /** Presses, hears `received`, and loses its link. */
  async function pressThenDrop (id: string, secret: string): Promise<string> {
    const device = await connectDevice(system.mqttUrl, id, id, secret)
    await device.client.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    const received = await eventually(async () => device.heard.find((a) => a.state === 'received'), 15_000, 'received')
    await dropLink(device)
    return received.alertId!
  }

  it('hears "acknowledged" after a gateway restart that happened while it was away, once', async () => {
    const id = 'btn-replay-restart'
    const secret = await system.provision(id)
    const alertId = await pressThenDrop(id, secret)
    expect((await system.api('POST', `/v1/alerts/${alertId}/acknowledge`, {})).status).toBe(200)
    await pause(1500) // relayed, to no one
    await system.restartGateway()
    await pause(1000) // the restarted relay's first poll, to no one either

    const back = await connectDevice(system.mqttUrl, id, id, secret)
    const heard = await eventually(async () => back.heard.find((a) => a.state === 'acknowledged'), 10_000, 'acknowledged after the restart')
    expect(heard).toMatchObject({ seq: 1, alertId })
    // Confirmed by the device's PUBACK: not sent a third time.
    await eventually(async () => await metricValue(system.gateway, 'sos_gateway_acks_unconfirmed', {}) === 0 || undefined, 5000, 'confirmed')
    await back.client.endAsync()
    const again = await connectDevice(system.mqttUrl, id, id, secret)
    await pause(500)
    expect(again.heard).toEqual([])
    await again.client.endAsync()
  })

  it('hears a state sent while it was away once when it resumes its session at the same gateway, subscribing again or not', async () => {
    // The broker kept the session and queued the state for it: told again besides, the device
    // heard it twice at every return (review 71).
    for (const subscribesAgain of [false, true]) {
      const id = `btn-replay-resume-${subscribesAgain ? 'sub' : 'nosub'}`
      const secret = await system.provision(id)
      const alertId = await pressThenDrop(id, secret)
      expect((await system.api('POST', `/v1/alerts/${alertId}/acknowledge`, {})).status).toBe(200)
      await pause(1500) // relayed, queued by the broker for the session

      const heard: Ack[] = []
      const back = await mqtt.connectAsync(system.mqttUrl, { clientId: id, username: id, password: secret, clean: false, protocolVersion: 4, reconnectPeriod: 0 })
      back.on('message', (_topic, payload) => heard.push(JSON.parse(payload.toString())))
      if (subscribesAgain) await back.subscribeAsync(topics.ack(id), { qos: 1 })
      await eventually(async () => heard.find((a) => a.state === 'acknowledged'), 10_000, 'acknowledged on resuming')
      await pause(1000)
      expect(heard.filter((a) => a.alertId === alertId).map((a) => a.state), id).toEqual(['acknowledged'])
      await back.endAsync()
    }
  })

  it('hears a state sent while it was away when it resumes a session subscribed at QoS 0, for which the broker queued nothing', async () => {
    // Taken for a session the broker delivers to, it was told nothing at all (review 73).
    const id = 'btn-replay-resume-qos0'
    const secret = await system.provision(id)
    const first = await connectDevice(system.mqttUrl, id, id, secret, 0)
    await first.client.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    const { alertId } = await eventually(async () => first.heard.find((a) => a.state === 'received'), 15_000, 'received')
    await dropLink(first)
    expect((await system.api('POST', `/v1/alerts/${alertId}/acknowledge`, {})).status).toBe(200)
    await pause(1500)

    const back = await connectDevice(system.mqttUrl, id, id, secret, 0)
    await eventually(async () => back.heard.find((a) => a.state === 'acknowledged'), 10_000, 'acknowledged on resuming at QoS 0')
    await back.client.endAsync()
  })

  it('hears a state relayed after a gateway restart: the gateway knows from disk it served the device', async () => {
    const id = 'btn-replay-relayed-late'
    const secret = await system.provision(id)
    const alertId = await pressThenDrop(id, secret)
    await system.stopGateway()
    // Acknowledged while the gateway is down: its relay publishes it after the restart, to no one.
    expect((await system.api('POST', `/v1/alerts/${alertId}/acknowledge`, {})).status).toBe(200)
    await system.startGateway()
    await pause(1500)

    const back = await connectDevice(system.mqttUrl, id, id, secret)
    expect(await eventually(async () => back.heard.find((a) => a.state === 'acknowledged'), 10_000, 'acknowledged, relayed after the restart')).toMatchObject({ seq: 1, alertId })
    await back.client.endAsync()
  })

  it('hears the newest state of its alert through another gateway', async () => {
    const id = 'btn-replay-roam'
    const secret = await system.provision(id)
    const alertId = await pressThenDrop(id, secret)
    for (const step of ['acknowledge', 'dispatch']) expect((await system.api('POST', `/v1/alerts/${alertId}/${step}`, {})).status).toBe(200)
    await pause(1500)

    const back = await connectDevice(`mqtt://127.0.0.1:${second.ports.mqtt}`, id, id, secret)
    await eventually(async () => back.heard.find((a) => a.state === 'dispatched'), 10_000, 'dispatched through the second gateway')
    // The newest state only, not each one it missed.
    expect(back.heard.filter((a) => a.alertId === alertId).map((a) => a.state)).toEqual(['dispatched'])
    await back.client.endAsync()
  })

  it('takes only the device\'s own PUBACK as heard, not a service tool\'s', async () => {
    const id = 'btn-replay-tool'
    const secret = await system.provision(id)
    const alertId = await pressThenDrop(id, secret)
    // A technician's tool listens on the device's acks meanwhile, and hears the acknowledgement.
    const tool = await connectDevice(system.mqttUrl, `${id}:tool`, id, secret)
    expect((await system.api('POST', `/v1/alerts/${alertId}/acknowledge`, {})).status).toBe(200)
    await eventually(async () => tool.heard.find((a) => a.state === 'acknowledged'), 10_000, 'the tool heard it')
    await tool.client.endAsync()
    // No session of the device's left to hold it for it.
    await system.restartGateway()

    const back = await connectDevice(system.mqttUrl, id, id, secret)
    await eventually(async () => back.heard.find((a) => a.state === 'acknowledged'), 10_000, 'the device heard it too')
    await back.client.endAsync()
  })
})

describe('a device that cannot confirm', () => {
  let system: TestSystem
  beforeAll(async () => { system = await startSystem({ gateway: { downlinkWaitMs: 300 } }) })
  afterAll(async () => { await system?.stop() })

  it('counts what a device subscribed at QoS 0 was sent as heard: no PUBACK will come, and it is not told again at every reconnect', async () => {
    const id = 'btn-replay-qos0'
    const secret = await system.provision(id)
    const device = await connectDevice(system.mqttUrl, id, id, secret, 0)
    await device.client.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    const received = await eventually(async () => device.heard.find((a) => a.state === 'received'), 10_000, 'received')
    expect((await system.api('POST', `/v1/alerts/${received.alertId}/resolve`, { outcome: 'real' })).status).toBe(200)
    await eventually(async () => device.heard.find((a) => a.state === 'resolved'), 10_000, 'resolved')
    await device.client.endAsync()
    for (let i = 0; i < 2; i++) {
      const again = await connectDevice(system.mqttUrl, id, id, secret, 0)
      await pause(500)
      expect(again.heard).toEqual([])
      await again.client.endAsync()
    }
    expect(await metricValue(system.gateway, 'sos_gateway_acks_unconfirmed', {})).toBe(0)
  })
})

describe('the states kept for a device', () => {
  it('forgets a state unconfirmed for more than 7 days, while running too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-acks-'))
    const db = openStateDb(dir)
    const writer = new StateWriter(db.name, quietLog)
    try {
      let now = Date.now()
      const sent: string[] = []
      const replay = new AckReplay(db, writer, (_topic, body) => sent.push(body), () => false, () => now)
      replay.send('btn-k', topics.ack('btn-k'), { seq: 1, state: 'resolved', alertId: 'a-old' })
      now += 8 * 24 * 3600_000
      expect(replay.replay('btn-k', topics.ack('btn-k'))).toBe(0)
      expect(replay.size()).toBe(0)
    } finally {
      await writer.close()
      db.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('never goes back to an earlier state of an alert, and keeps them across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-acks-'))
    try {
      const sent: string[] = []
      const open = () => {
        const db = openStateDb(dir)
        const writer = new StateWriter(db.name, quietLog)
        return { db, writer, replay: new AckReplay(db, writer, (_topic, body) => sent.push(body), () => false) }
      }
      const topic = topics.ack('btn-x')
      const first = open()
      const acknowledged = { seq: 4, state: 'acknowledged', alertId: 'a-1' } as const
      first.replay.send('btn-x', topic, acknowledged)
      // The server's answer to the gateway's upload comes late, after the downlink's news.
      const late = { seq: 4, state: 'received', alertId: 'a-1' } as const
      first.replay.send('btn-x', topic, late)
      const other = { seq: 9, state: 'received', alertId: 'a-2' } as const
      first.replay.send('btn-x', topic, other)
      expect(sent.map((body) => JSON.parse(body))).toEqual([acknowledged, late, other])
      await first.writer.close()
      first.db.close()

      sent.length = 0
      const second = open()
      expect(second.replay.replay('btn-x', topic)).toBe(2)
      expect(sent.map((body) => JSON.parse(body))).toEqual([acknowledged, other])
      second.replay.confirmed('btn-x', JSON.stringify(acknowledged))
      sent.length = 0
      second.replay.replay('btn-x', topic)
      expect(sent.map((body) => JSON.parse(body))).toEqual([other])
      await second.writer.close()
      second.db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('counts a state published to a device on a clean session, subscribed, as heard', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-acks-'))
    const db = openStateDb(dir)
    const writer = new StateWriter(db.name, quietLog)
    try {
      let subscribed = false
      const replay = new AckReplay(db, writer, () => {}, () => subscribed)
      replay.send('btn-y', topics.ack('btn-y'), { seq: 1, state: 'received', alertId: 'a-3' })
      expect(replay.size()).toBe(1)
      subscribed = true
      expect(replay.replay('btn-y', topics.ack('btn-y'))).toBe(1)
      expect(replay.size()).toBe(0)
      replay.send('btn-y', topics.ack('btn-y'), { seq: 1, state: 'acknowledged', alertId: 'a-3' })
      expect(replay.size()).toBe(0)
    } finally {
      await writer.close()
      db.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('holds only the newest write of each alert\'s row while the disk hangs, whatever the acks and confirmations meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-acks-'))
    const db = openStateDb(dir)
    const writer = new StateWriter(db.name, quietLog, { busyTimeoutMs: 20, retryMs: 50 })
    // Another connection holds the write lock: to the writer, a disk that does not answer.
    const other = new Sqlite(db.name)
    try {
      other.exec('BEGIN IMMEDIATE')
      const replay = new AckReplay(db, writer, () => {}, () => false)
      const topic = topics.ack('btn-frantic')
      // A pedestrian pressing without end: each press joins the alert and is answered `received`.
      for (let seq = 1; seq <= 5000; seq++) {
        const ack = { seq, state: 'received', alertId: 'a-frantic' } as const
        replay.send('btn-frantic', topic, ack)
        replay.confirmed('btn-frantic', JSON.stringify(ack))
      }
      replay.send('btn-frantic', topic, { seq: 5001, state: 'acknowledged', alertId: 'a-frantic' })
      expect(writer.waiting()).toBeLessThan(150)
      other.exec('COMMIT')
      await writer.flushed()
      expect(db.prepare('SELECT alert_id, state, body FROM unconfirmed_acks').all()).toEqual([
        { alert_id: 'a-frantic', state: 'acknowledged', body: JSON.stringify({ seq: 5001, state: 'acknowledged', alertId: 'a-frantic' }) }
      ])
    } finally {
      other.close()
      await writer.close()
      db.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
