/**
 * Part 5: one device floods, the others press. A device whose firmware loops, or whose secret
 * was stolen, sends junk as fast as TCP carries it; every other device's press must still be
 * taken. Measured on a gateway with the limits a ward runs (not the opened ones of parts 1 and
 * 2): five devices press every 200 ms, first alone, then while a sixth device writes malformed
 * payloads at QoS 1 without waiting for a single PUBACK, and reconnects whenever it is cut off
 * (the gateway shuts such a device down: babbling-devices.ts); their press PUBACK and
 * `received` times, before and during.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import * as mqttPacket from 'mqtt-packet'
import type { DeviceCredentials } from '../lib/fleet.js'
import { RawClient } from '../lib/raw-mqtt.js'
import { CpuMeter } from '../lib/proc.js'
import { round, summarize, type Summary } from '../lib/stats.js'

export interface FloodPhase { seconds: number, presses: number, puback: Summary, received: Summary }

export interface FloodResult {
  /** Junk packets the flooder wrote per second (as fast as its socket took them; after a shutdown, into refused connections). */
  floodPerSec: number
  gatewayCpuPercent: number
  before: FloodPhase
  during: FloodPhase
}

const PRESS_EVERY_MS = 200

export async function runFlood (options: { mqttPort: number, gatewayPid: number, devices: DeviceCredentials[], seconds: number }): Promise<FloodResult> {
  const [flooder, ...pressers] = options.devices
  if (!flooder || pressers.length === 0) throw new Error('the flood part needs at least two devices')
  const boot = randomBytes(4).toString('hex')
  const clients = await Promise.all(pressers.map((d) => RawClient.connect({ port: options.mqttPort, clientId: d.id, username: d.id, password: d.secret })))
  const sentAt = new Map<string, number>()
  let received: number[] = []
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
    received = []
    const end = performance.now() + ms
    while (performance.now() < end) {
      await Promise.all(clients.map((client, i) => new Promise<void>((resolve) => {
        const s = seq++
        const t0 = performance.now()
        sentAt.set(`${i}/${s}`, t0)
        client.publish(`sos/v1/${pressers[i]!.id}/event`, JSON.stringify({ seq: s, boot, type: 'press', ts: Date.now() }), () => { pubacks.push(performance.now() - t0); resolve() })
      })))
      await new Promise((resolve) => setTimeout(resolve, PRESS_EVERY_MS))
    }
    // The last presses' `received` may still be on their way.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    return { seconds: round(ms / 1000), presses: pubacks.length, puback: roundSummary(summarize(pubacks)), received: roundSummary(summarize(received)) }
  }
  try {
    const before = await pressFor(Math.min(4000, options.seconds * 1000 / 2))
    const flood = startFlood(options.mqttPort, flooder)
    const cpu = new CpuMeter(() => [options.gatewayPid])
    const floodStarted = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const during = await pressFor(options.seconds * 1000)
    const gatewayCpuPercent = round(cpu.used() / ((performance.now() - floodStarted) * 10))
    const floodPerSec = Math.round(flood.stop() / ((performance.now() - floodStarted) / 1000))
    return { floodPerSec, gatewayCpuPercent, before, during }
  } finally {
    for (const client of clients) client.socket.destroy()
  }
}

/** A connection writing malformed QoS 1 publishes as fast as the socket takes them, never reading a PUBACK. */
function startFlood (port: number, device: DeviceCredentials): { stop: () => number } {
  let sent = 0
  let stopped = false
  let socket: Socket
  const open = () => {
    socket = tcpConnect({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    socket.on('data', () => {})
    // Cut off (a drain timeout, say): it comes back, as a looping firmware would.
    socket.on('close', () => { if (!stopped) setTimeout(open, 100) })
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: device.id, keepalive: 60, username: device.id, password: Buffer.from(device.secret) }))
    let id = 0
    const pump = () => {
      while (!stopped && !socket.destroyed) {
        id = id % 65535 + 1
        sent++
        const ok = socket.write(mqttPacket.generate({ cmd: 'publish', topic: `sos/v1/${device.id}/event`, payload: `{"seq":${sent},"type":"bogus"`, qos: 1, messageId: id, retain: false, dup: false }))
        if (!ok) return socket.once('drain', pump)
      }
    }
    socket.once('connect', () => setTimeout(pump, 100))
  }
  open()
  return { stop: () => { stopped = true; socket.destroy(); return sent } }
}

function roundSummary (s: Summary): Summary {
  return { count: s.count, p50: round(s.p50), p99: round(s.p99), max: round(s.max) }
}
