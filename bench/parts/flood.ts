/**
 * Part 5: one device floods, the others press. A device whose firmware loops, or whose secret
 * was stolen, sends junk as fast as TCP carries it; every other device's press must still be
 * taken. Measured on a gateway with the limits a ward runs (not the opened ones of parts 1 and
 * 2): five devices press every 200 ms on a fixed schedule (not waiting for their answers, so a
 * stall is sampled as often as calm), first alone, then while a sixth device writes junk at
 * QoS 1 without waiting for a single PUBACK: payloads cut short and JSON that is no event, in
 * turn. It reconnects whenever it is cut off, and writes again once let in (the gateway shuts
 * such a connection down: babbling-connections.ts). The five's press PUBACK and `received` times, alone
 * and during; a press whose connection died before its PUBACK is counted as failed.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import * as mqttPacket from 'mqtt-packet'
import type { DeviceCredentials } from '../lib/fleet.js'
import { RawClient } from '../lib/raw-mqtt.js'
import { CpuMeter } from '../lib/proc.js'
import { round, summarize, type Summary } from '../lib/stats.js'

export interface FloodPhase {
  seconds: number
  /** Presses sent, PUBACKed, and failed (their connection gone before the PUBACK). */
  presses: number
  pubacked: number
  failed: number
  puback: Summary
  received: Summary
}

export interface FloodResult {
  /** The gateway's setting for babbling connections: shut down (its default), or never (BABBLING_REFUSALS=0). */
  shutdown: boolean
  /** Junk publishes the flooder wrote per second, on connections the gateway let in (buffered ones included). */
  floodPerSec: number
  /** The flooder's connections let in and refused (CONNACK other than 0, or closed before one). */
  connectsAccepted: number
  connectsRefused: number
  gatewayCpuPercent: number
  before: FloodPhase
  during: FloodPhase
}

const PRESS_EVERY_MS = 200

export async function runFlood (options: { mqttPort: number, gatewayPid: number, devices: DeviceCredentials[], seconds: number, shutdown: boolean }): Promise<FloodResult> {
  const [flooder, ...pressers] = options.devices
  if (!flooder || pressers.length === 0) throw new Error('the flood part needs at least two devices')
  const boot = randomBytes(4).toString('hex')
  const clients = await Promise.all(pressers.map((d) => RawClient.connect({ port: options.mqttPort, clientId: d.id, username: d.id, password: d.secret })))
  const sentAt = new Map<string, number>()
  let received: number[] = []
  let flood: { stop: () => { sent: number, accepted: number, refused: number } } | undefined
  try {
    await Promise.all(clients.map(async (client, i) => {
      client.onMessage = (_topic, payload) => {
        let body: { seq?: number, state?: string }
        try { body = JSON.parse(payload.toString()) } catch { return }
        const key = `${i}/${body.seq}`
        const sent = sentAt.get(key)
        if (body.state === 'received' && sent !== undefined) { received.push(performance.now() - sent); sentAt.delete(key) }
      }
      await client.subscribe(`sos/v1/${pressers[i]!.id}/ack`)
    }))
    let seq = 1
    const pressFor = async (ms: number): Promise<FloodPhase> => {
      const pubacks: number[] = []
      let presses = 0
      let failed = 0
      const answered: Array<Promise<void>> = []
      received = []
      const started = performance.now()
      for (let round = 0; performance.now() - started < ms; round++) {
        for (const [i, client] of clients.entries()) {
          const s = seq++
          const t0 = performance.now()
          sentAt.set(`${i}/${s}`, t0)
          presses++
          answered.push(new Promise<void>((resolve) => client.publish(`sos/v1/${pressers[i]!.id}/event`, JSON.stringify({ seq: s, boot, type: 'press', ts: Date.now() }), (err) => {
            if (err) failed++
            else pubacks.push(performance.now() - t0)
            resolve()
          })))
        }
        // On schedule, whatever the answers: the next round at its time, not after them.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (round + 1) * PRESS_EVERY_MS - performance.now())))
      }
      await Promise.race([Promise.all(answered), new Promise((resolve) => setTimeout(resolve, 5000))])
      // The last presses' `received` may still be on their way.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      return { seconds: round(ms / 1000), presses, pubacked: pubacks.length, failed, puback: roundSummary(summarize(pubacks)), received: roundSummary(summarize(received)) }
    }
    const before = await pressFor(Math.min(4000, options.seconds * 1000 / 2))
    const cpu = new CpuMeter(() => [options.gatewayPid])
    const floodStarted = performance.now()
    flood = startFlood(options.mqttPort, flooder)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const during = await pressFor(options.seconds * 1000)
    const gatewayCpuPercent = round(cpu.used() / ((performance.now() - floodStarted) * 10))
    const { sent, accepted, refused } = flood.stop()
    flood = undefined
    return { shutdown: options.shutdown, floodPerSec: Math.round(sent / ((performance.now() - floodStarted) / 1000)), connectsAccepted: accepted, connectsRefused: refused, gatewayCpuPercent, before, during }
  } finally {
    flood?.stop()
    for (const client of clients) client.socket.destroy()
  }
}

/**
 * Connections writing junk QoS 1 publishes as fast as the socket takes them once let in (CONNACK
 * 0), never reading a PUBACK; each one closed or refused is followed by another 100 ms later.
 */
function startFlood (port: number, device: DeviceCredentials): { stop: () => { sent: number, accepted: number, refused: number } } {
  let sent = 0
  let accepted = 0
  let refused = 0
  let stopped = false
  let socket: Socket | undefined
  let reopen: NodeJS.Timeout | undefined
  const open = () => {
    const conn = tcpConnect({ host: '127.0.0.1', port })
    socket = conn
    let letIn = false
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (packet) => {
      if (packet.cmd !== 'connack' || letIn) return
      if (packet.returnCode !== 0) return
      letIn = true
      accepted++
      pump()
    })
    parser.on('error', () => conn.destroy())
    conn.on('data', (chunk) => parser.parse(chunk))
    conn.on('error', () => {})
    conn.on('close', () => {
      if (!letIn) refused++
      if (!stopped) reopen = setTimeout(open, 100)
    })
    conn.once('connect', () => conn.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: device.id, keepalive: 60, username: device.id, password: Buffer.from(device.secret) })))
    let id = 0
    const pump = () => {
      while (!stopped && !conn.destroyed) {
        id = id % 65535 + 1
        sent++
        // In turn: cut short (refused before parsing) and JSON that is no event (parsed, then refused).
        const payload = sent % 2 === 0 ? `{"seq":${sent},"type":"pr` : `{"seq":${sent},"type":"bogus","battery":"full"}`
        const ok = conn.write(mqttPacket.generate({ cmd: 'publish', topic: `sos/v1/${device.id}/event`, payload, qos: 1, messageId: id, retain: false, dup: false }))
        if (!ok) return conn.once('drain', pump)
      }
    }
  }
  open()
  return {
    stop: () => {
      stopped = true
      clearTimeout(reopen)
      socket?.destroy()
      return { sent, accepted, refused }
    }
  }
}

function roundSummary (s: Summary): Summary {
  return { count: s.count, p50: round(s.p50), p99: round(s.p99), max: round(s.max) }
}
