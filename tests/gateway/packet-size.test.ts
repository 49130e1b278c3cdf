/**
 * The packet size cap over real sockets: a packet declaring more than MAX_PACKET_BYTES closes
 * its connection as soon as its header says so, whether the sender authenticated or not and over
 * TCP or WebSocket, without the gateway reading the rest; a payload over an event's 4 KiB but
 * under the cap is still acknowledged and answered `rejected`; other devices are untouched.
 */
import { connect as tcpConnect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { ackCollector, connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { MAX_PACKET_BYTES, MAX_PACKET_BYTES_BEFORE_CONNACK } from '../../gateway/packet-size-guard.js'
import { topics } from '../../protocol/index.js'
import { metricValue, remainingLength } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000 })

const CHUNK = Buffer.alloc(64 * 1024, 0x61)
/** How much a hostile sender may push before giving up: far past the cap and the kernel's buffers. */
const SEND_AT_MOST = 64 * 2 ** 20

/** A CONNECT fixed header declaring `length` bytes to follow. */
const connectHeader = (length: number) => Buffer.from([0x10, ...remainingLength(length)])

describe('packet size cap', () => {
  let system: TestSystem
  const id = 'btn-size-001'
  let secret: string
  const closed = () => metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'oversized_packet' })

  beforeAll(async () => {
    system = await startSystem()
    secret = await system.provision(id)
  })

  afterAll(async () => {
    await system?.stop()
  })

  it('closes an unauthenticated TCP socket whose CONNECT declares 200 MB, before reading it', async () => {
    const before = await closed()
    const socket = tcpConnect({ host: '127.0.0.1', port: system.gateway.ports.mqtt })
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    let sent = 0
    socket.write(connectHeader(200 * 2 ** 20))
    // Push as fast as the socket takes it; the gateway must hang up long before the end.
    while (!socket.destroyed && sent < SEND_AT_MOST) {
      sent += CHUNK.length
      if (!socket.write(CHUNK)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), ended])
    }
    await ended
    expect(sent).toBeLessThan(SEND_AT_MOST)
    expect(await closed()).toBe(before + 1)
  })

  it('closes a socket whose CONNECT declares 20 KiB: before CONNACK the cap is 8 KiB', async () => {
    const before = await closed()
    const socket = tcpConnect({ host: '127.0.0.1', port: system.gateway.ports.mqtt })
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.write(Buffer.concat([connectHeader(20 * 1024), Buffer.alloc(MAX_PACKET_BYTES_BEFORE_CONNACK + 1024, 0x61)]))
    await ended
    expect(await closed()).toBe(before + 1)
  })

  it('closes a WebSocket sender the same way', async () => {
    const before = await closed()
    const ws = new WebSocket(`ws://127.0.0.1:${system.gateway.ports.ws}`, 'mqtt')
    ws.on('error', () => {})
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    const ended = new Promise<void>((resolve) => ws.once('close', () => resolve()))
    ws.send(connectHeader(200 * 2 ** 20))
    let sent = 0
    while (ws.readyState === WebSocket.OPEN && sent < SEND_AT_MOST) {
      ws.send(CHUNK)
      sent += CHUNK.length
      if (ws.bufferedAmount > 4 * CHUNK.length) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await ended
    expect(sent).toBeLessThan(SEND_AT_MOST)
    expect(await closed()).toBe(before + 1)
  })

  it('counts a WebSocket frame over four packet limits, which ws refuses itself', async () => {
    const before = await closed()
    const ws = new WebSocket(`ws://127.0.0.1:${system.gateway.ports.ws}`, 'mqtt')
    ws.on('error', () => {})
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    const ended = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
    ws.send(Buffer.alloc(4 * MAX_PACKET_BYTES + 1, 0x61))
    expect(await ended).toBe(1009)
    await expect.poll(() => closed()).toBe(before + 1)
  })

  it('leaves a malformed packet at the head of a large chunk to aedes, not counted as oversized', async () => {
    // Over WebSocket, the whole chunk reaches the parser at once (one frame).
    const device = await connectDevice(`ws://127.0.0.1:${system.gateway.ports.ws}`, `${id}:malformed`, id, secret)
    const before = await closed()
    const gone = new Promise<void>((resolve) => device.once('close', () => resolve()))
    // A PUBLISH with both QoS bits set: the parser fails on the first byte of 100 KiB.
    const chunk = Buffer.alloc(100 * 1024, 0)
    chunk[0] = 0x36
    ;(device as unknown as { stream: NodeJS.WritableStream }).stream.write(chunk)
    await gone
    expect(await closed()).toBe(before)
    device.end(true)
  })

  it('acknowledges a payload over 4 KiB but under the cap, and closes a device that publishes past the cap', async () => {
    const bystander = await connectDevice(system.mqttUrl, `${id}:bystander`, id, secret)
    const device = await connectDevice(system.mqttUrl, id, id, secret)
    const acks = await ackCollector(device, id)

    // Under the cap: read whole, acknowledged, answered `rejected` (DESIGN §2).
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press', pad: 'x'.repeat(MAX_PACKET_BYTES - 1024) }), { qos: 1 })
    // (Its seq is not read from a payload too large to parse.)
    expect((await acks.waitFor((a) => a.state === 'rejected')).reason).toMatch(/too large/)

    const before = await closed()
    const gone = new Promise<void>((resolve) => device.once('close', () => resolve()))
    device.publish(topics.event(id), JSON.stringify({ seq: 2, type: 'press', pad: 'x'.repeat(MAX_PACKET_BYTES) }), { qos: 1 })
    await gone
    expect(await closed()).toBe(before + 1)

    // The device's other connection carries on.
    await bystander.publishAsync(topics.event(id), JSON.stringify({ seq: 3, type: 'test' }), { qos: 1 })
    await bystander.endAsync()
    device.end(true)
  })
})
