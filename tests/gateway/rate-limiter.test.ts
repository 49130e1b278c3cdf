/** The per-device token bucket, with an injected clock. */
import { describe, expect, it } from 'vitest'
import { DeviceRateLimiter, FREE_RESENDS } from '../../gateway/rate-limiter.js'

describe('device rate limiter', () => {
  it('lets a burst through, then one per refill, and never limits alarms', () => {
    let now = 0
    const limiter = new DeviceRateLimiter({ burst: 3, perSecond: 1 }, () => now)
    expect([1, 2, 3, 4].map(() => limiter.allow('btn-1', 'heartbeat'))).toEqual([true, true, true, false])
    expect(Array.from({ length: 100 }, () => limiter.allow('btn-1', 'press')).every(Boolean)).toBe(true)
    expect(limiter.allow('btn-2', 'heartbeat')).toBe(true)
    now += 1000
    expect([limiter.allow('btn-1', 'test'), limiter.allow('btn-1', 'heartbeat')]).toEqual([true, false])
  })

  it('keeps a budget apart for each warning that raises an alert: heartbeats flushed after a power cut do not shed its power_lost', () => {
    let now = 0
    const limiter = new DeviceRateLimiter({ burst: 3, perSecond: 1 }, () => now)
    expect([1, 2, 3, 4].map(() => limiter.allow('btn-1', 'heartbeat'))).toEqual([true, true, true, false])
    expect(limiter.allow('btn-1', 'power_lost')).toBe(true)
    expect([1, 2, 3].map(() => limiter.allow('btn-1', 'battery_low'))).toEqual([true, true, true])
    // Each warning is still limited on its own: a faulty gauge cannot flood.
    expect(limiter.allow('btn-1', 'battery_low')).toBe(false)
    // A flooding device keeps its empty buckets across a reconnect, whichever budget it emptied.
    limiter.forget('btn-1')
    expect(limiter.allow('btn-1', 'battery_low')).toBe(false)
    now += 10_000
    limiter.forget('btn-1')
    expect(limiter.allow('btn-1', 'battery_low')).toBe(true)
  })

  it('keeps a flooding device\'s empty bucket across a reconnect', () => {
    let now = 0
    const limiter = new DeviceRateLimiter({ burst: 2, perSecond: 1 }, () => now)
    limiter.allow('btn-1', 'heartbeat')
    limiter.allow('btn-1', 'heartbeat')
    limiter.forget('btn-1')
    expect(limiter.allow('btn-1', 'heartbeat')).toBe(false)
    now += 10_000
    limiter.forget('btn-1')
    expect(limiter.allow('btn-1', 'heartbeat')).toBe(true)
  })

  it('takes reports at a person\'s pace: five at once, then one a minute, whatever the routine budget', () => {
    let now = 0
    const limiter = new DeviceRateLimiter({ burst: 100, perSecond: 100 }, () => now)
    expect(Array.from({ length: 6 }, () => limiter.allow('ksk-1', 'report'))).toEqual([true, true, true, true, true, false])
    // Its own budget: heartbeats and presses go on.
    expect(limiter.allow('ksk-1', 'heartbeat')).toBe(true)
    expect(limiter.allow('ksk-1', 'press')).toBe(true)
    now += 30_000
    expect(limiter.allow('ksk-1', 'report')).toBe(false)
    now += 30_000
    expect([limiter.allow('ksk-1', 'report'), limiter.allow('ksk-1', 'report')]).toEqual([true, false])
    // Not refilled by reconnecting.
    limiter.forget('ksk-1')
    expect(limiter.allow('ksk-1', 'report')).toBe(false)
  })
  it('takes PIN cancels at a person\'s pace: five at once, then one every ten seconds, apart from everything else', () => {
    // Each cancel costs the server a slow PIN check: a counter flooding them held every other
    // shop's cancel back for seconds. A cancel refused leaves the alarm standing (the safe side).
    let now = 0
    const limiter = new DeviceRateLimiter({ burst: 100, perSecond: 100 }, () => now)
    expect(Array.from({ length: 6 }, () => limiter.allow('ctr-1', 'cancel'))).toEqual([true, true, true, true, true, false])
    expect([limiter.allow('ctr-1', 'press'), limiter.allow('ctr-1', 'heartbeat'), limiter.allow('ctr-2', 'cancel')]).toEqual([true, true, true])
    now += 10_000
    expect([limiter.allow('ctr-1', 'cancel'), limiter.allow('ctr-1', 'cancel')]).toEqual([true, false])
  })

  it('does not charge a resend of an event that passed (a lost PUBACK), only a few times each, and charges a new event', () => {
    let now = 0
    const limiter = new DeviceRateLimiter({ burst: 100, perSecond: 100 }, () => now)
    const copy = (key: string) => () => key
    expect(['ctr-1/-/1 a', 'ctr-1/-/2 a', 'ctr-1/-/3 a', 'ctr-1/-/4 a', 'ctr-1/-/5 a'].map((key) => limiter.allow('ctr-1', 'cancel', copy(key)))).toEqual([true, true, true, true, true])
    // The budget is spent; the last cancel, resent, is the same cancel.
    expect(Array.from({ length: FREE_RESENDS }, () => limiter.allow('ctr-1', 'cancel', copy('ctr-1/-/5 a')))).toEqual(Array(FREE_RESENDS).fill(true))
    expect(limiter.allow('ctr-1', 'cancel', copy('ctr-1/-/6 a'))).toBe(false)
    // A device resending one cancel in a loop is charged past its free resends.
    expect(limiter.allow('ctr-1', 'cancel', copy('ctr-1/-/5 a'))).toBe(false)
    // A resend of one that was refused is judged afresh, as a new one.
    now += 10_000
    expect([limiter.allow('ctr-1', 'cancel', copy('ctr-1/-/6 a')), limiter.allow('ctr-1', 'cancel', copy('ctr-1/-/7 a'))]).toEqual([true, false])
    expect(limiter.allow('ctr-1', 'cancel', copy('ctr-1/-/6 a'))).toBe(true)
  })

  it('charges another event under an id that passed (a seq reused, other bytes): no budget four times over', () => {
    const limiter = new DeviceRateLimiter({ burst: 100, perSecond: 100 }, () => 0)
    expect(limiter.allow('ctr-1', 'cancel', () => 'ctr-1/-/1 pin-1111')).toBe(true)
    const reused = Array.from({ length: 10 }, (_, i) => limiter.allow('ctr-1', 'cancel', () => `ctr-1/-/1 pin-${i}`))
    expect(reused.filter(Boolean)).toHaveLength(4)
  })

  it('remembers nothing in routine budgets (a resent heartbeat costs a token; memory per connection stays flat)', () => {
    const limiter = new DeviceRateLimiter({ burst: 2, perSecond: 0.001 }, () => 0)
    let asked = 0
    const key = () => { asked++; return 'btn-1/-/1 x' }
    expect([1, 2, 3].map(() => limiter.allow('btn-1', 'heartbeat', key))).toEqual([true, true, false])
    expect(asked).toBe(0)
  })
})
