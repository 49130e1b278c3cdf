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
import { BATTERY_LOW_PERCENT, FIRMWARE_VERSION, firstHeartbeatDelay, HOLD_MS, KIND_PROFILES, SELF_TEST_CUE_MS, type DeviceKind } from './kinds.js'
import { SCREEN_TEXT, SPOKEN, type DeviceOutputs, type LedMode, type SoundCue } from './outputs.js'
import { AnnouncementScreen } from './announcement.js'
import { AlertProgress, type AlertStep } from './alert-progress.js'
import { Led } from './led.js'

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
  /**
   * The seq file could not be written (a full or failing disk): the device goes on counting in
   * memory under the fresh `boot` given here, and tries to save again at the next block.
   */
  seqUnsaved: [reason: string, boot: string]
}

/** Events whose `received` opens or joins the panic alert the person in front of the device sees. */
const ALARMS: ReadonlySet<EventType> = new Set(['press', 'hold'])
/** Events whose acks speak of the panic alert (a cancel's `cancelled`); acks of the others (a tamper alert's states) never touch its light. */
const ABOUT_THE_ALARM: ReadonlySet<EventType> = new Set(['press', 'hold', 'cancel'])
/** Events a person waits on: queued while the link is down, they cut the reconnect wait short (backoff.ts). */
const URGENT: ReadonlySet<EventType> = new Set(['press', 'hold', 'tamper', 'cancel'])
const LED_OF: Readonly<Record<AlertStep, LedMode>> = { received: 'blinking', acknowledged: 'steady', dispatched: 'steady', resolved: 'off', cancelled: 'off' }
const REMEMBERED_SENT = 512

export class Device extends EventEmitter<WireEvents> {
  readonly silent: boolean
  private readonly seq: SeqStore
  private readonly queue: OutboundQueue
  private readonly connection: DeviceConnection
  private readonly heartbeatMs: number
  private readonly sent = new Map<number, { type: EventType, at: number, answered?: true }>()
  private heartbeatTimer?: NodeJS.Timeout
  private holdTimer?: NodeJS.Timeout
  private buttonIsDown = false
  private holdSent = false
  private pumping = false
  private readonly led: Led
  private readonly alert = new AlertProgress()
  private readonly announcements?: AnnouncementScreen
  private batteryLevel?: number
  private batteryLowSent = false

  constructor (readonly config: DeviceConfig, private readonly outputs: DeviceOutputs) {
    super()
    const profile = KIND_PROFILES[config.kind]
    this.silent = config.silent ?? profile.silent
    this.heartbeatMs = config.heartbeatMs ?? profile.heartbeatMs
    this.batteryLevel = profile.battery ? (config.battery ?? 100) : undefined
    this.led = new Led((mode) => outputs.led(mode))
    if (profile.screen && outputs.screen) this.announcements = new AnnouncementScreen((message) => outputs.screen?.(message))
    this.seq = new SeqStore(join(config.stateDir, `${config.id}.json`), config.seqReserve, (reason, boot) => this.emit('seqUnsaved', reason, boot))
    this.queue = new OutboundQueue(config.queueLimit)
    const subscriptions = [topics.ack(config.id), ...(profile.screen ? [topics.announce(config.zone)] : [])]
    this.connection = new DeviceConnection({ url: config.mqttUrl, deviceId: config.id, secret: config.secret, subscriptions, backoff: config.backoff ?? DEFAULT_BACKOFF })
    this.connection.on('connected', () => { this.emit('connected'); void this.pump() })
    this.connection.on('disconnected', () => {
      // An alarm still queued (the link dropped under it) is sent as soon as the link allows.
      if (this.queue.some((e) => URGENT.has(e.type))) this.connection.hurry()
      this.emit('disconnected')
    })
    this.connection.on('refused', (reason) => this.emit('refused', reason))
    this.connection.on('unavailable', () => this.emit('unavailable'))
    this.connection.on('message', (topic, payload) => this.onMessage(topic, payload))
  }

  get id (): string { return this.config.id }
  get connected (): boolean { return this.connection.connected }
  /** The alarm's state on the LED (not a self-test cue laid over it for a moment). */
  get ledMode (): LedMode { return this.led.state }
  get queued (): number { return this.queue.size }
  get lastSeq (): number { return this.seq.last }
  get boot (): string { return this.seq.boot }

  start (): void {
    this.connection.start()
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), firstHeartbeatDelay(this.heartbeatMs))
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
    if (!this.connected) {
      this.outputs.screen?.({ kind: 'status', text: SCREEN_TEXT.offline() })
      if (URGENT.has(type)) this.connection.hurry()
    }
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
    this.announcements?.receive(payload)
  }

  private onAck (ack: Ack): void {
    const sent = ack.seq === undefined ? undefined : this.sent.get(ack.seq)
    this.emit('ack', ack, sent && ack.state === 'received' ? performance.now() - sent.at : undefined)
    switch (ack.state) {
      case 'received':
        if (sent?.type === 'report' && ack.ticketId) {
          this.outputs.screen?.({ kind: 'ticket', ticketId: ack.ticketId, text: SCREEN_TEXT.ticket(ack.ticketId) })
        }
        if (sent?.type === 'test' && !sent.answered) this.selfTestPassed()
        if (sent) sent.answered = true
        // A press joining an alert already acknowledged keeps the steady light (AlertProgress).
        if (sent && ALARMS.has(sent.type)) this.follow(ack.state, ack)
        return
      case 'acknowledged':
      case 'dispatched':
      case 'resolved':
      case 'cancelled':
        // The downlink names the alert's last press; an ack of a tamper or other warning
        // alert names that event instead. One naming a seq not sent since this start is news
        // of an alert from before it, under the same boot (the counter went on from its file);
        // under a new boot its seq says nothing (the count started again), and a gateway that
        // tells a device again what it missed may send an old alert's `resolved` just as the
        // new boot's first press is made: taken, it made the button ignore that press's states.
        if (sent ? ABOUT_THE_ALARM.has(sent.type) : this.seq.bootAtStart === this.seq.boot) this.follow(ack.state, ack)
        return
      case 'rejected':
        this.outputs.screen?.({ kind: 'status', text: SCREEN_TEXT.rejected(ack.reason) })
        this.emit('refused', `event ${ack.seq ?? '?'} rejected: ${ack.reason ?? 'no reason given'}`)
    }
  }

  /** Shows and says the panic alert's new step; a late or repeated ack says nothing. */
  private follow (step: AlertStep, ack: Ack): void {
    const shown = this.alert.advance(step, ack.alertId, ack.seq)
    if (shown === undefined) return
    this.led.show(LED_OF[shown])
    this.say(shown)
  }

  /**
   * A self-test opens no alert: its result gets a cue of its own, and the LED then shows the
   * alarm's state again (were it left blinking "received", nothing would ever turn it off,
   * and a real press afterwards would change nothing the owner of a silent counter can see).
   */
  private selfTestPassed (): void {
    this.led.flash('flash', SELF_TEST_CUE_MS)
    this.say('self_test_ok')
  }

  private say (cue: SoundCue): void {
    if (!this.silent) this.outputs.sound?.(cue, SPOKEN[cue])
  }

  private clearTimers (): void {
    clearTimeout(this.heartbeatTimer)
    clearTimeout(this.holdTimer)
    this.led.stop()
    this.announcements?.stop()
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
