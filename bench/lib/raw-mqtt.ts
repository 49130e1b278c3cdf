/**
 * A minimal MQTT 3.1.1 client over a raw TCP socket, encoding and parsing with mqtt-packet.
 *
 * Why not MQTT.js: a load generator must cost far less CPU per message than the broker it
 * measures, and MQTT.js' stores, timers and streams cost more than the gateway's own work.
 * This one does only CONNECT, QoS 1 PUBLISH with PUBACK timing, SUBSCRIBE and incoming
 * publishes (answered with PUBACK). It never reconnects by itself: callers decide.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import * as mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'

export interface RawClientOptions {
  host?: string
  port: number
  clientId: string
  username?: string
  password?: string
  keepalive?: number
  /** Bind the local end here (several source addresses lift the ephemeral-port ceiling). */
  localAddress?: string
}

export type Incoming = (topic: string, payload: Buffer) => void

export class RawClient {
  readonly socket: Socket
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 })
  private nextId = 1
  private readonly inflight = new Map<number, (err?: Error) => void>()
  private connack?: { resolve: () => void, reject: (err: Error) => void }
  private suback?: () => void
  closed = false
  onMessage?: Incoming
  onClose?: () => void

  private constructor (options: RawClientOptions) {
    this.socket = tcpConnect({ host: options.host ?? '127.0.0.1', port: options.port, localAddress: options.localAddress })
    this.socket.setNoDelay(true)
    this.socket.on('data', (chunk) => this.parser.parse(chunk))
    this.socket.on('error', () => {})
    this.socket.on('close', () => this.fail(new Error('connection closed')))
    this.parser.on('packet', (packet) => this.handle(packet))
    this.parser.on('error', (err) => { this.fail(err); this.socket.destroy() })
  }

  /** Connects and resolves after CONNACK 0; rejects on any refusal or closed socket. */
  static connect (options: RawClientOptions): Promise<RawClient> {
    const client = new RawClient(options)
    return new Promise((resolve, reject) => {
      client.connack = { resolve: () => resolve(client), reject }
      client.socket.once('connect', () => {
        client.socket.write(mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: options.clientId,
          keepalive: options.keepalive ?? 60,
          ...(options.username === undefined ? {} : { username: options.username }),
          ...(options.password === undefined ? {} : { password: Buffer.from(options.password) })
        }))
      })
    })
  }

  /** QoS 1 publish; the callback runs at PUBACK (or with an error if the connection dies first). */
  publish (topic: string, payload: string | Buffer, done: (err?: Error) => void): void {
    if (this.closed) return done(new Error('connection closed'))
    let id = this.nextId
    // Skip ids still in flight (only possible when 65535 are outstanding).
    while (this.inflight.has(id)) id = id === 65535 ? 1 : id + 1
    this.nextId = id === 65535 ? 1 : id + 1
    this.inflight.set(id, done)
    this.socket.write(mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: id, retain: false, dup: false }))
  }

  subscribe (topic: string, qos: 0 | 1 = 1): Promise<void> {
    return new Promise((resolve) => {
      this.suback = resolve
      this.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 65535, subscriptions: [{ topic, qos }] } as Packet))
    })
  }

  inflightCount (): number {
    return this.inflight.size
  }

  /** Closes with a TCP reset: no TIME_WAIT left behind on our side to exhaust local ports. */
  destroy (): void {
    this.closed = true
    if (!this.socket.destroyed) this.socket.resetAndDestroy()
  }

  private handle (packet: Packet): void {
    switch (packet.cmd) {
      case 'connack':
        if (packet.returnCode === 0) this.connack?.resolve()
        else this.connack?.reject(new Error(`CONNACK ${packet.returnCode}`))
        this.connack = undefined
        return
      case 'puback': {
        const done = this.inflight.get(packet.messageId!)
        this.inflight.delete(packet.messageId!)
        done?.()
        return
      }
      case 'suback':
        this.suback?.()
        this.suback = undefined
        return
      case 'publish':
        if (packet.qos > 0) this.socket.write(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId }))
        this.onMessage?.(packet.topic, packet.payload as Buffer)
    }
  }

  private fail (err: Error): void {
    if (this.closed && this.inflight.size === 0 && !this.connack) return
    this.closed = true
    this.connack?.reject(err)
    this.connack = undefined
    const waiting = [...this.inflight.values()]
    this.inflight.clear()
    for (const done of waiting) done(err)
    this.onClose?.()
  }
}
