/**
 * Per-device token buckets. Alarms (press, hold, tamper) are never limited here: presses are
 * stored, each under its own seq, and the server coalesces them into the open alert, so a
 * frantic pedestrian never loses the alarm. What a faulty or hostile device can flood with is
 * routine telemetry, and that is what is shed.
 *
 * Warnings that raise an alert of their own (battery_low, power_lost) each have a bucket apart
 * from the heartbeats and tests: a device flushing the heartbeats it buffered during a power
 * cut, then saying `power_lost`, had the warning shed, and no alert raised.
 *
 * What a person types has a budget at a person's pace: a resident's report (each one a ticket
 * an operator must read: a kiosk's stolen secret, or a stuck keyboard, opened them without end)
 * and a shop owner's PIN cancel (each one a slow PIN check on the server, where a flood of them
 * from one counter held every other shop's cancel back for seconds). Past it the device hears
 * `rejected: rate_limited`; a cancel refused so leaves the alarm standing: the safe side.
 *
 * In the budgets at a person's pace, a resend of an event that passed (the same id and the same
 * bytes: a QoS 1 redelivery, or a retry, after a PUBACK was lost) passes again without a token:
 * it is the same event, stored once. Charged again, a counter retrying the cancel it had just
 * used its last token on heard `rate_limited` for a cancel the server had in fact taken. Free
 * only a few times each: a device resending one cancel in a loop would otherwise have the server
 * check its PIN without end. The same id with other bytes (a seq reused for another cancel, a
 * report typed anew) is another event, and charged: keyed on the id alone, a device had four
 * times its budget by reusing seqs. Routine budgets remember nothing: a resent heartbeat costs
 * a token of a large budget, and remembering every device's would cost memory per connection.
 */
import type { EventType } from '../protocol/index.js'

export const UNLIMITED_TYPES: ReadonlySet<EventType> = new Set(['press', 'hold', 'tamper'])

/** Reports: five at once (a queue typed while the kiosk was offline), then one a minute. */
export const REPORT_LIMIT: RateLimit = Object.freeze({ burst: 5, perSecond: 1 / 60 })
/** Cancels: five at once (a few mistyped PINs), then one every ten seconds. */
export const CANCEL_LIMIT: RateLimit = Object.freeze({ burst: 5, perSecond: 1 / 10 })

/**
 * Types with a budget of their own: a limit of their own, or `routine`'s limit in a bucket
 * apart. The types not named here share the routine bucket.
 */
const OWN_BUDGETS: Readonly<Partial<Record<EventType, RateLimit | 'routine'>>> = {
  battery_low: 'routine',
  power_lost: 'routine',
  report: REPORT_LIMIT,
  cancel: CANCEL_LIMIT
}

export interface RateLimit {
  /** Bucket size: a burst this large is always accepted. */
  burst: number
  /** Tokens regained per second. */
  perSecond: number
}

/** Times a resend of an event that passed goes free: a lost PUBACK's retries, not a loop. */
export const FREE_RESENDS = 3
/** Events that passed remembered per device and budget, newest kept (a device resends what is in flight: a few). */
const REMEMBERED = 8

interface Bucket {
  tokens: number
  at: number
  /** Events that passed lately (their `copyKey`), with the free resends each has left; oldest first. */
  passed: Map<string, number>
}

export class DeviceRateLimiter {
  /** Per device, its buckets by budget (`routine`, or a type with a budget of its own). */
  private readonly buckets = new Map<string, Map<string, Bucket>>()

  constructor (private readonly limit: RateLimit, private readonly now: () => number = Date.now) {}

  /**
   * True when this event may pass; false when it is over the device's budget. `copyKey` (asked
   * for in a person's budget only) names the event so that a copy of it has the same: a resend
   * of an event that passed goes free.
   */
  allow (deviceId: string, type: EventType, copyKey?: () => string): boolean {
    if (UNLIMITED_TYPES.has(type)) return true
    const now = this.now()
    let budgets = this.buckets.get(deviceId)
    if (!budgets) this.buckets.set(deviceId, budgets = new Map())
    const budget = Object.hasOwn(OWN_BUDGETS, type) ? type : 'routine'
    const limit = this.limitOf(budget)
    const bucket = budgets.get(budget) ?? { tokens: limit.burst, at: now, passed: new Map() }
    bucket.tokens = this.refilled(bucket, limit, now)
    bucket.at = now
    budgets.set(budget, bucket)
    const key = copyKey !== undefined && limit !== this.limit ? copyKey() : undefined
    const resends = key === undefined ? undefined : bucket.passed.get(key)
    if (resends !== undefined && resends > 0) {
      bucket.passed.set(key!, resends - 1)
      return true
    }
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    if (key !== undefined && resends === undefined) this.rememberPassed(bucket, key)
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
      const limit = this.limitOf(budget)
      return this.refilled(bucket, limit, now) >= limit.burst
    })
    if (full) this.buckets.delete(deviceId)
  }

  private rememberPassed (bucket: Bucket, key: string): void {
    bucket.passed.set(key, FREE_RESENDS)
    if (bucket.passed.size > REMEMBERED) bucket.passed.delete(bucket.passed.keys().next().value!)
  }

  private refilled (bucket: Bucket, limit: RateLimit, now: number): number {
    return Math.min(limit.burst, bucket.tokens + (now - bucket.at) / 1000 * limit.perSecond)
  }

  private limitOf (budget: string): RateLimit {
    const own = OWN_BUDGETS[budget as EventType]
    return own === undefined || own === 'routine' ? this.limit : own
  }
}
