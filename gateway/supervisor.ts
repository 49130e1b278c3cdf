/**
 * Device supervision: who is online, and who went silent.
 *
 * A device is online from its (primary, client id = device id) connection on. It goes offline
 * when its connection ends (reason `will` when its last will fired, else `disconnected`) and it
 * has not come back within `graceMs` (a reconnect or session takeover is not an outage), or
 * when no event (heartbeat or other) arrived for 1.5 × its kind's heartbeat interval while it
 * stays connected (`heartbeat_missed`). Checked every interval/4, so an offline is reported
 * within 2 intervals of the last event; a dropped connection is looked at again when its grace
 * ends, so it is reported then (within GRACE_CHECK_SPACING_MS), not up to a quarter interval
 * later: a button whose power was cut, its will fired, showed offline 12.5 s after at the
 * default 30 s interval, and 15 minutes after at an interval of an hour. Each change is
 * published as the retained status (`online`/`offline`) and queued durably for the server,
 * which raises `device_offline`.
 * Devices online when the gateway stopped get a fresh 1.5 intervals to reconnect after restart.
 *
 * Silence is measured on the monotonic clock, never the wall clock: a gateway that boots on a
 * stale clock and is then set by NTP stepped every device's silence by the step, and reported a
 * whole fleet offline at once (forward), or a dead device an hour late (back). The wall clock
 * only dates the changes reported; the server puts those dates on its own clock by the
 * gateway's measured offset (each request says when it was sent), so a change dated before a
 * clock was set back still orders right against the ones after.
 */
import type { Logger } from 'pino'
import { topics, type PresenceChange } from '../protocol/index.js'
import type { GatewayMetrics } from './metrics.js'
import type { PresenceLog } from './presence-log.js'

/**
 * Grace ends looked at no more often than this: a whole street dropping over a few seconds (a
 * power cut) makes one pass over the devices per spacing, not one per device.
 */
const GRACE_CHECK_SPACING_MS = 250

export type OfflineReason = 'will' | 'disconnected' | 'revoked' | 'heartbeat_missed'

export interface SupervisionOptions {
  gatewayId: string
  /** Heartbeat interval per device kind (ms); unknown kinds use `button`'s. */
  heartbeatIntervalsMs: Readonly<Record<string, number>>
  /** How long a dropped connection may take to come back before it counts as offline. */
  reconnectGraceMs: number
}

interface Watched {
  kind: string
  state: 'online' | 'offline'
  connected: boolean
  /** On the monotonic clock (`elapsed`). */
  lastSeen: number
  /** Set while a dropped connection is in its grace period (`at` on the monotonic clock). */
  pending?: { reason: OfflineReason, at: number }
}

export class Supervisor {
  private readonly devices = new Map<string, Watched>()
  private timer?: NodeJS.Timeout
  /** A pass at the end of the earliest grace pending (`graceDue`, monotonic). */
  private graceTimer?: NodeJS.Timeout
  private graceDue = Infinity
  private stopped = false

  constructor (
    private readonly options: SupervisionOptions,
    private readonly presence: PresenceLog,
    private readonly publishStatus: (topic: string, status: 'online' | 'offline') => void,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    /** The wall clock: what a change is dated by. */
    private readonly now: () => number = Date.now,
    /** The monotonic clock: what silence is measured on (the global one, which tests' fake timers drive too). */
    private readonly elapsed: () => number = () => performance.now()
  ) {}

  start (): void {
    const startedAt = this.elapsed()
    for (const saved of this.presence.lastStates()) {
      this.devices.set(saved.deviceId, { kind: saved.kind, state: saved.state, connected: false, lastSeen: startedAt })
    }
    const shortest = Math.min(...Object.values(this.options.heartbeatIntervalsMs))
    this.timer = setInterval(() => this.check(), Math.max(20, Math.floor(shortest / 4)))
    this.timer.unref()
    this.updateGauges()
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    clearTimeout(this.graceTimer)
  }

  /** The device's primary connection is ready. */
  connected (deviceId: string, kind: string): void {
    const watched = this.watch(deviceId, kind)
    watched.connected = true
    watched.pending = undefined
    watched.lastSeen = this.elapsed()
    if (watched.state !== 'online') this.change(deviceId, watched, 'online', 'connected')
  }

  /** The device's primary connection ended; `revoked` takes effect at once, others after the grace. */
  disconnected (deviceId: string, reason: OfflineReason): void {
    const watched = this.devices.get(deviceId)
    if (!watched) return
    watched.connected = false
    if (watched.state !== 'online') return
    if (reason === 'revoked') return this.change(deviceId, watched, 'offline', reason)
    watched.pending = { reason, at: this.elapsed() + this.options.reconnectGraceMs }
    this.checkAt(watched.pending.at)
  }

  /** A valid event arrived from the device: it is alive. */
  seen (deviceId: string, kind: string): void {
    const watched = this.watch(deviceId, kind)
    watched.lastSeen = this.elapsed()
    if (watched.state === 'offline' && watched.connected) this.change(deviceId, watched, 'online', 'connected')
  }

  stateOf (deviceId: string): 'online' | 'offline' | undefined {
    return this.devices.get(deviceId)?.state
  }

  /** One pass over the watched devices; the timer calls it, tests may too. */
  check (): void {
    const now = this.elapsed()
    let nextGraceEnd = Infinity
    for (const [deviceId, watched] of this.devices) {
      if (watched.state !== 'online') continue
      if (watched.pending) {
        if (now >= watched.pending.at) this.change(deviceId, watched, 'offline', watched.pending.reason)
        else nextGraceEnd = Math.min(nextGraceEnd, watched.pending.at)
        continue
      }
      if (now - watched.lastSeen > 1.5 * this.intervalOf(watched.kind)) this.change(deviceId, watched, 'offline', 'heartbeat_missed')
    }
    if (nextGraceEnd < Infinity) this.checkAt(Math.max(nextGraceEnd, now + GRACE_CHECK_SPACING_MS))
  }

  /** Makes sure a pass runs at `at` (monotonic), or at most GRACE_CHECK_SPACING_MS after it. */
  private checkAt (at: number): void {
    if (this.stopped || this.graceDue <= at + GRACE_CHECK_SPACING_MS) return
    clearTimeout(this.graceTimer)
    this.graceDue = at
    this.graceTimer = setTimeout(() => {
      this.graceDue = Infinity
      this.graceTimer = undefined
      this.check()
    }, Math.max(0, at - this.elapsed()))
    this.graceTimer.unref()
  }

  private intervalOf (kind: string): number {
    return this.options.heartbeatIntervalsMs[kind] ?? this.options.heartbeatIntervalsMs.button ?? 30_000
  }

  private watch (deviceId: string, kind: string): Watched {
    let watched = this.devices.get(deviceId)
    if (!watched) this.devices.set(deviceId, watched = { kind, state: 'offline', connected: false, lastSeen: this.elapsed() })
    watched.kind = kind
    return watched
  }

  private change (deviceId: string, watched: Watched, state: 'online' | 'offline', reason: PresenceChange['reason']): void {
    watched.state = state
    watched.pending = undefined
    const change: PresenceChange = { deviceId, gatewayId: this.options.gatewayId, state, at: this.now(), reason }
    this.presence.append(change, watched.kind)
    this.publishStatus(topics.status(deviceId), state)
    this.metrics.presenceChanges.inc({ state, reason })
    this.updateGauges()
    this.log[state === 'offline' ? 'warn' : 'info']({ deviceId, reason }, `device ${state}`)
  }

  private updateGauges (): void {
    let online = 0
    for (const watched of this.devices.values()) if (watched.state === 'online') online++
    this.metrics.devicesOnline.set(online)
    this.metrics.devicesOffline.set(this.devices.size - online)
  }
}
