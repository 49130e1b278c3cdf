/**
 * Per-device token buckets for routine traffic. Alarm events (press, hold, cancel, tamper) are
 * never limited here: presses are stored, each under its own seq, and the server coalesces them
 * into the open alert, so a frantic pedestrian never loses the alarm. What a faulty or hostile
 * device can flood with is routine telemetry, and that is what is shed.
 *
 * Warnings that raise an alert of their own (battery_low, power_lost) each have a bucket apart
 * from the heartbeats and tests: a device flushing the heartbeats it buffered during a power
 * cut, then saying `power_lost`, had the warning shed, and no alert raised.
 *
 * A resident's report has a budget of its own too, at a person's pace: each one is a ticket an
 * operator must read, and a kiosk's stolen secret (or a stuck keyboard) opened them without end.
 */
import type { EventType } from '../protocol/index.js'

export const UNLIMITED_TYPES: ReadonlySet<EventType> = new Set(['press', 'hold', 'cancel', 'tamper'])

/** Routine types with a budget of their own (they raise alerts); the rest share one. */
const OWN_BUDGET: ReadonlySet<EventType> = new Set(['battery_low', 'power_lost', 'report'])

/** Reports: five at once (a queue typed while the kiosk was offline), then one a minute. */
export const REPORT_LIMIT: RateLimit = Object.freeze({ burst: 5, perSecond: 1 / 60 })

export interface RateLimit {
  /** Bucket size: a burst this large is always accepted. */
  burst: number
  /** Tokens regained per second. */
  perSecond: number
}

interface Bucket { tokens: number, at: number }

export class DeviceRateLimiter {
  /** Per device, its buckets by budget (`routine`, or a type with a budget of its own). */
  private readonly buckets = new Map<string, Map<string, Bucket>>()

  constructor (private readonly limit: RateLimit, private readonly now: () => number = Date.now) {}

  /** True when this event may pass; false when it is over the device's budget. */
  allow (deviceId: string, type: EventType): boolean {
    if (UNLIMITED_TYPES.has(type)) return true
    const now = this.now()
    let budgets = this.buckets.get(deviceId)
    if (!budgets) this.buckets.set(deviceId, budgets = new Map())
    const budget = OWN_BUDGET.has(type) ? type : 'routine'
    const bucket = budgets.get(budget) ?? { tokens: limitOf(budget, this.limit).burst, at: now }
    bucket.tokens = this.refilled(bucket, limitOf(budget, this.limit), now)
    bucket.at = now
    budgets.set(budget, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /**
   * Forgets a device's buckets when it disconnects, but only once they have refilled: a
   * flooding device must not get a fresh budget by reconnecting. Memory stays bounded by the
   * devices that are live or recently flooded.
   */
  forget (deviceId: string): void {
    const budgets = this.buckets.get(deviceId)
    if (!budgets) return
    const now = this.now()
    const full = [...budgets].every(([budget, bucket]) => {
      const limit = limitOf(budget, this.limit)
      return this.refilled(bucket, limit, now) >= limit.burst
    })
    if (full) this.buckets.delete(deviceId)
  }

  private refilled (bucket: Bucket, limit: RateLimit, now: number): number {
    return Math.min(limit.burst, bucket.tokens + (now - bucket.at) / 1000 * limit.perSecond)
  }
}

function limitOf (budget: string, routine: RateLimit): RateLimit {
  return budget === 'report' ? REPORT_LIMIT : routine
}
