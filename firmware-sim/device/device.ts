/**
 * The device state machine, shared by simulated devices and hardware drivers: inputs (button
 * down/up, cancel with PIN, tamper, test, kiosk report) become numbered events, queued in
 * order and published at QoS 1; acks from the gateway drive the LED, sound and screen.
 * A driver feeds inputs and implements `DeviceOutputs`; everything else lives here.
 */
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { topics, ACK_STATES, type Ack, type EventType } from '../../protocol/index.js'
import type { ReportCategory, WireEvent } from './wire-event.js'
import { DeviceConnection } from './connection.js'
import { SeqStore } from './seq-store.js'
import { OutboundQueue } from './outbound-queue.js'
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { BATTERY_LOW_PERCENT, FIRMWARE_VERSION, HOLD_MS, KIND_PROFILES, type DeviceKind } from './kinds.js'
import { SCREEN_TEXT, SPOKEN, type DeviceOutputs, type LedMode, type SoundCue } from './outputs.js'
import { parseAnnouncement } from './announcement.js'

export interface DeviceConfig {
  id: string
  secret: string
  kind: DeviceKind
  zone: string
  mqttUrl: string
  /** Where the per-device seq file lives (`{stateDir}/{id}.json`). */
  stateDir: string
  silent?: boolean
  heartbeatMs?: number
  holdMs?: number
  queueLimit?: number
  seqReserve?: number
  backoff?: BackoffOptions
  /** Battery percent lost per heartbeat (drain). */
  batteryDrain?: number
  battery?: number
  fw?: string
}


export interface WireEvents {
  connected: []
  disconnected: []
  refused: [reason: string]
  /** The gateway could not check credentials for now (CONNACK 3); the device retries. */
  unavailable: []
  /** Handed to MQTT (first attempt). */
  sent: [event: WireEvent]
  /** The gateway has it durably (PUBACK); `ms` since the input. */
  puback: [event: WireEvent, ms: number]
  /** An ack on the device's ack topic; `ms` since the input of the event it answers, if known. */
  ack: [ack: Ack, ms: number | undefined]
  /** Dropped because the offline queue was full. */
  dropped: [event: WireEvent]
}

/** Events whose acks the person in front of the device sees. */
const USER_FACING: ReadonlySet<EventType> = new Set(['press', 'hold', 'test'])
const REMEMBERED_SENT = 512

export class Device extends EventEmitter<WireEvents> {
  readonly silent: boolean
  private readonly seq: SeqStore
  private readonly queue: OutboundQueue
  private readonly connection: DeviceConnection
  private readonly heartbeatMs: number
  private readonly sent = new Map<number, { type: EventType, at: number }>()
  private heartbeatTimer?: NodeJS.Timeout
  private holdTimer?: NodeJS.Timeout
  private buttonIsDown = false
  private holdSent = false
  private pumping = false
  private led: LedMode = 'off'
  private alertId?: string
  private batteryLevel?: number
  private batteryLowSent = false

  constructor (readonly config: DeviceConfig, private readonly outputs: DeviceOutputs) {
    super()
    const profile = KIND_PROFILES[config.kind]
    this.silent = config.silent ?? profile.silent
    this.heartbeatMs = config.heartbeatMs ?? profile.heartbeatMs
    this.batteryLevel = profile.battery ? (config.battery ?? 100) : undefined
    this.seq = new SeqStore(join(config.stateDir, `${config.id}.json`), config.seqReserve)
    this.queue = new OutboundQueue(config.queueLimit)
    const subscriptions = [topics.ack(config.id), ...(profile.screen ? [topics.announce(config.zone)] : [])]
    this.connection = new DeviceConnection({ url: config.mqttUrl, deviceId: config.id, secret: config.secret, subscriptions, backoff: config.backoff ?? DEFAULT_BACKOFF })
    this.connection.on('connected', () => { this.emit('connected'); void this.pump() })
    this.connection.on('disconnected', () => this.emit('disconnected'))
    this.connection.on('refused', (reason) => this.emit('refused', reason))
    this.connection.on('unavailable', () => this.emit('unavailable'))
    this.connection.on('message', (topic, payload) => this.onMessage(topic, payload))
  }

  get id (): string { return this.config.id }
  get connected (): boolean { return this.connection.connected }
  get ledMode (): LedMode { return this.led }
  get queued (): number { return this.queue.size }
  get lastSeq (): number { return this.seq.last }
  get boot (): string { return this.seq.boot }

  start (): void {
    this.connection.start()
    // A random first phase, so a fleet powered on together does not beat in unison.
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), Math.random() * this.heartbeatMs)
  }

  async stop (): Promise<void> {
    this.clearTimers()
    await this.connection.stop()
  }

  /** Sudden power loss: no goodbye, so the gateway's last will reports the device offline. */
  async powerCut (): Promise<void> {
    this.clearTimers()
    await this.connection.powerCut()
  }

  /** A network fault: the link drops, the device reconnects with backoff. */
  dropLink (): void { this.connection.dropLink() }

  buttonDown (): void {
    if (this.buttonIsDown) return
    this.buttonIsDown = true
    this.holdSent = false
    this.holdTimer = setTimeout(() => {
      this.holdSent = true
      this.send('hold')
    }, this.config.holdMs ?? HOLD_MS)
  }

  buttonUp (): void {
    if (!this.buttonIsDown) return
    this.buttonIsDown = false
    clearTimeout(this.holdTimer)
    if (!this.holdSent) this.send('press')
  }

  /** The button is held (the board measured the hold itself): send `hold` now, not after a timer. */
  holdNow (): void {
    if (!this.buttonIsDown || this.holdSent) return
    clearTimeout(this.holdTimer)
    this.holdSent = true
    this.send('hold')
  }

  press (): void { this.buttonDown(); this.buttonUp() }
  cancel (pin: string): void { this.send('cancel', { pin }) }
  tamper (): void { this.send('tamper') }
  test (): void { this.send('test') }
  powerLost (): void { this.send('power_lost') }

  report (category: ReportCategory, text: string): void {
    this.outputs.screen?.({ kind: 'status', text: SCREEN_TEXT.reportSent() })
    this.send('report', { report: { category, text } })
  }

  /** Numbers the event now (its seq is persisted first), queues it, publishes in order. */
  private send (type: EventType, extra: Partial<WireEvent> = {}): void {
    const event: WireEvent = { seq: this.seq.next(), boot: this.seq.boot, type, ts: Date.now(), ...this.telemetry(), ...extra }
    this.sent.set(event.seq, { type, at: performance.now() })
    if (this.sent.size > REMEMBERED_SENT) this.sent.delete(this.sent.keys().next().value as number)
    const dropped = this.queue.push(event)
    if (dropped) this.emit('dropped', dropped)
    if (!this.connected) this.outputs.screen?.({ kind: 'status', text: SCREEN_TEXT.offline() })
    void this.pump()
  }

  /** One publish in flight at a time: order is kept across reconnects. */
  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (let event = this.queue.peek(); event && this.connected; event = this.queue.peek()) {
        this.emit('sent', event)
        try {
          await this.connection.publish(topics.event(this.id), JSON.stringify(event))
        } catch {
          return // stopped; the event stays queued
        }
        this.queue.shift()
        const sent = this.sent.get(event.seq)
        this.emit('puback', event, sent ? performance.now() - sent.at : 0)
      }
    } finally {
      this.pumping = false
    }
  }

  private heartbeat (): void {
    // Heartbeats say "alive now": sent only while connected, never queued for later.
    if (this.connected) this.send('heartbeat')
    if (this.batteryLevel !== undefined) {
      this.batteryLevel = Math.max(0, this.batteryLevel - (this.config.batteryDrain ?? 0.01))
      if (this.batteryLevel < BATTERY_LOW_PERCENT && !this.batteryLowSent) {
        this.batteryLowSent = true
        this.send('battery_low')
      }
    }
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), this.heartbeatMs)
  }

  private telemetry (): Partial<WireEvent> {
    return {
      fw: this.config.fw ?? FIRMWARE_VERSION,
      ...(this.batteryLevel === undefined ? {} : { battery: Math.round(this.batteryLevel) })
    }
  }

  private onMessage (topic: string, payload: Buffer): void {
    if (topic === topics.ack(this.id)) {
      const ack = parseAck(payload)
      if (ack) this.onAck(ack)
      return
    }
    const announcement = parseAnnouncement(payload, Date.now())
    if (announcement) this.outputs.screen?.(announcement)
  }

  private onAck (ack: Ack): void {
    const sent = ack.seq === undefined ? undefined : this.sent.get(ack.seq)
    this.emit('ack', ack, sent && ack.state === 'received' ? performance.now() - sent.at : undefined)
    switch (ack.state) {
      case 'received':
        if (sent?.type === 'report' && ack.ticketId) {
          this.outputs.screen?.({ kind: 'ticket', ticketId: ack.ticketId, text: SCREEN_TEXT.ticket(ack.ticketId) })
        }
        if (sent && USER_FACING.has(sent.type)) {
          // A press joining an alert already acknowledged keeps the steady light.
          const sameAlert = ack.alertId !== undefined && ack.alertId === this.alertId
          if (!(sameAlert && this.led === 'steady')) this.setLed('blinking', 'received')
          this.alertId = ack.alertId ?? this.alertId
        }
        return
      case 'acknowledged':
      case 'dispatched':
        if (this.concernsCurrentAlert(ack)) this.setLed('steady', ack.state)
        return
      case 'resolved':
      case 'cancelled':
        if (this.concernsCurrentAlert(ack)) {
          this.setLed('off', ack.state)
          this.alertId = undefined
        }
        return
      case 'rejected':
        this.outputs.screen?.({ kind: 'status', text: SCREEN_TEXT.rejected(ack.reason) })
        this.emit('refused', `event ${ack.seq ?? '?'} rejected: ${ack.reason ?? 'no reason given'}`)
    }
  }

  private concernsCurrentAlert (ack: Ack): boolean {
    return ack.alertId === undefined || this.alertId === undefined || ack.alertId === this.alertId
  }

  private setLed (mode: LedMode, cue: SoundCue): void {
    const changed = mode !== this.led
    this.led = mode
    if (changed) this.outputs.led(mode)
    if (!this.silent) this.outputs.sound?.(cue, SPOKEN[cue])
  }

  private clearTimers (): void {
    clearTimeout(this.heartbeatTimer)
    clearTimeout(this.holdTimer)
  }
}

function parseAck (payload: Buffer): Ack | undefined {
  try {
    const value = JSON.parse(payload.toString('utf8')) as Partial<Ack>
    if (typeof value !== 'object' || value === null || !ACK_STATES.includes(value.state as Ack['state'])) return undefined
    return value as Ack
  } catch {
    return undefined
  }
}
export type { ReportCategory } from './wire-event.js'
