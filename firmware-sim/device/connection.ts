/**
 * The device's MQTT link (DESIGN.md §3): client id = username = device id, password = secret,
 * persistent session (clean=false), QoS 1, retained last will `offline` on its status topic,
 * `online` on every connect. Reconnects with exponential backoff and full jitter, forever,
 * until stopped; `hurry()` (an alarm waits) cuts the wait short (backoff.ts). MQTT.js keeps an
 * unacknowledged QoS 1 publish in its outgoing store and resends it after a reconnect, so a
 * publish in flight when the link drops is not lost.
 */
import { EventEmitter } from 'node:events'
import mqtt, { type MqttClient, type ISubscriptionGrant } from 'mqtt'
import { topics } from '../../protocol/index.js'
import { alarmReconnectDelay, DEFAULT_BACKOFF, reconnectDelay, type BackoffOptions } from './backoff.js'

export interface ConnectionOptions {
  url: string
  deviceId: string
  secret: string
  /** Topics to (re)subscribe on every connect, QoS 1. */
  subscriptions: string[]
  backoff: BackoffOptions
  keepaliveSeconds?: number
  connectTimeoutMs?: number
}

export interface ConnectionEvents {
  connected: []
  disconnected: []
  /** The gateway refused: CONNACK return code, or a subscription it denied. */
  refused: [reason: string]
  /** CONNACK 3: the gateway cannot check credentials right now; a transient condition, retried. */
  unavailable: []
  message: [topic: string, payload: Buffer]
}

/** CONNACK return codes of MQTT 3.1.1 that mean "you, not the network". */
const REFUSAL_CODES: Record<number, string> = {
  1: 'unacceptable protocol version', 2: 'identifier rejected', 4: 'bad username or password', 5: 'not authorized'
}
const SERVER_UNAVAILABLE = 3

export class DeviceConnection extends EventEmitter<ConnectionEvents> {
  private client?: MqttClient
  private attempt = 0
  /** Set while a reconnect waits; unset while an attempt is in flight or the link is up. */
  private retryTimer?: NodeJS.Timeout
  /** When the last connection attempt started (monotonic clock). */
  private lastAttemptAt = -Infinity
  /** An alarm waits to be sent: until the next connect, the waits between attempts are an alarm's. */
  private hurried = false
  private stopped = false

  constructor (private readonly options: ConnectionOptions) {
    super()
  }

  get connected (): boolean {
    return this.client?.connected === true
  }

  start (): void {
    const { url, deviceId, secret } = this.options
    this.lastAttemptAt = performance.now()
    const client = mqtt.connect(url, {
      clientId: deviceId,
      username: deviceId,
      password: secret,
      protocolVersion: 4,
      clean: false,
      keepalive: this.options.keepaliveSeconds ?? 30,
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      // We schedule reconnects ourselves, with jitter.
      reconnectPeriod: 0,
      will: { topic: topics.status(deviceId), payload: Buffer.from('offline'), qos: 1, retain: true }
    })
    this.client = client
    client.on('connect', () => this.onConnect(client))
    client.on('message', (topic, payload) => this.emit('message', topic, payload))
    client.on('error', (err: Error & { code?: number | string }) => {
      if (err.code === SERVER_UNAVAILABLE) this.emit('unavailable')
      else if (typeof err.code === 'number' && REFUSAL_CODES[err.code]) this.emit('refused', REFUSAL_CODES[err.code]!)
    })
    client.on('close', () => {
      // Scheduled first: a listener that hears of the drop may `hurry()` the reconnect.
      this.scheduleReconnect()
      this.emit('disconnected')
    })
  }

  /** Publishes at QoS 1; resolves on PUBACK. */
  publish (topic: string, payload: string): Promise<void> {
    const client = this.client
    if (!client) return Promise.reject(new Error('not started'))
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: 1 }, (err) => err ? reject(err) : resolve())
    })
  }

  /**
   * An alarm waits to be sent while the link is down: reconnect now rather than at the end of
   * the backoff wait (up to a minute), though not sooner than `alarmFloorMs` after the last
   * attempt began. An attempt in flight is let finish (one at a time); should it fail, the next
   * waits are an alarm's, until connected. Called again meanwhile (the person presses again),
   * it changes nothing: one press or twenty, the gateway sees the same connects.
   */
  hurry (): void {
    if (this.stopped || !this.client || this.client.connected || this.hurried) return
    this.hurried = true
    this.attempt = 0
    if (this.retryTimer === undefined) return // an attempt is in flight
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    const floorMs = this.options.backoff.alarmFloorMs ?? DEFAULT_BACKOFF.alarmFloorMs!
    this.retryIn(Math.max(0, floorMs - (performance.now() - this.lastAttemptAt)))
  }

  /** Drops the link the way a network fault does (no DISCONNECT); the device reconnects. */
  dropLink (): void {
    this.client?.stream?.destroy()
  }

  /** Power cut: the socket dies without DISCONNECT (the gateway fires the last will), and no reconnect. */
  async powerCut (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.retryTimer)
    await this.client?.endAsync(true)
  }

  /** A clean shutdown: DISCONNECT, no last will. */
  async stop (graceMs = 3000): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.retryTimer)
    const client = this.client
    if (!client) return
    if (!client.connected) return void await client.endAsync(true)
    // MQTT.js waits for in-flight publishes before DISCONNECT; a gateway that never answers
    // must not keep the device from shutting down.
    const giveUp = setTimeout(() => {
      for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id))
      client.emit('outgoingEmpty') // what end() waits for; removal does not emit it
    }, graceMs)
    await client.endAsync(false)
    clearTimeout(giveUp)
  }

  private onConnect (client: MqttClient): void {
    this.attempt = 0
    this.hurried = false
    client.publish(topics.status(this.options.deviceId), 'online', { qos: 1, retain: true })
    if (this.options.subscriptions.length > 0) {
      client.subscribe(this.options.subscriptions, { qos: 1 }, (err, granted?: ISubscriptionGrant[]) => {
        if (err) return
        for (const grant of granted ?? []) {
          if (grant.qos === 128) this.emit('refused', `subscription denied: ${grant.topic}`)
        }
      })
    }
    this.emit('connected')
  }

  private scheduleReconnect (): void {
    if (this.stopped || this.retryTimer) return
    const attempt = this.attempt++
    const { backoff } = this.options
    this.retryIn(this.hurried ? alarmReconnectDelay(attempt, backoff, performance.now() - this.lastAttemptAt) : reconnectDelay(attempt, backoff))
  }

  private retryIn (delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      const client = this.client
      if (this.stopped || !client || client.connected) return
      this.lastAttemptAt = performance.now()
      // Hand MQTT.js its own stores back: reconnect() without them starts empty ones and
      // forgets the QoS 1 publish that was in flight when the link dropped.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore })
    }, delayMs)
  }
}
