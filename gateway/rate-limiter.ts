/**
 * Per-device token buckets for routine traffic. Alarm events (press, hold, cancel, tamper,
 * report) are never limited here: presses are stored, each under its own seq, and the server
 * coalesces them into the open alert, so a frantic pedestrian never loses the alarm. What a
 * faulty or hostile device can flood with is routine telemetry, and that is what is shed.
 */
import type { EventType } from '../protocol/index.js'

export const UNLIMITED_TYPES: ReadonlySet<EventType> = new Set(['press', 'hold', 'cancel', 'tamper', 'report'])

export interface RateLimit {
  /** Bucket size: a burst this large is always accepted. */
  burst: number
  /** Tokens regained per second. */
  perSecond: number
}

interface Bucket { tokens: number, at: number }

export class DeviceRateLimiter {
  private readonly buckets = new Map<string, Bucket>()

  constructor (private readonly limit: RateLimit, private readonly now: () => number = Date.now) {}

  /** True when this event may pass; false when it is over the device's budget. */
  allow (deviceId: string, type: EventType): boolean {
    if (UNLIMITED_TYPES.has(type)) return true
    const now = this.now()
    const bucket = this.buckets.get(deviceId) ?? { tokens: this.limit.burst, at: now }
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + (now - bucket.at) / 1000 * this.limit.perSecond)
    bucket.at = now
    this.buckets.set(deviceId, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /**
   * Forgets a device's bucket when it disconnects, but only once the bucket has refilled: a
   * flooding device must not get a fresh budget by reconnecting. Memory stays bounded by the
   * devices that are live or recently flooded.
   */
  forget (deviceId: string): void {
    const bucket = this.buckets.get(deviceId)
    if (!bucket) return
    const tokens = bucket.tokens + (this.now() - bucket.at) / 1000 * this.limit.perSecond
    if (tokens >= this.limit.burst) this.buckets.delete(deviceId)
  }
}
