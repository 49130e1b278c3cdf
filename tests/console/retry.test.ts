/**
 * The console's retries (server/console/js/retry.js, the module the page runs), with fake
 * timers: a read that failed is tried again with backoff until it succeeds, and runs of one
 * key that overlap settle by which started last (a reload that hung and timed out after a newer
 * one succeeded must not leave the console saying its data is incomplete).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

const retryModule: string = '../../server/console/js/retry.js'

describe('console retries', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('tries a failed read again after 1 s, 2 s, 4 s… until it succeeds, failing meanwhile', async () => {
    const { createRetrier } = await import(retryModule)
    const retrier = createRetrier({ random: () => 0 }) // no jitter: the longest delays
    let calls = 0
    await retrier.run('alert:a', async () => { if (++calls < 4) throw new Error('HTTP 502') })
    expect(retrier.failing()).toEqual([{ key: 'alert:a', error: new Error('HTTP 502') }])
    await vi.advanceTimersByTimeAsync(1000)
    expect(calls).toBe(2)
    await vi.advanceTimersByTimeAsync(1999)
    expect(calls).toBe(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(calls).toBe(3)
    await vi.advanceTimersByTimeAsync(4000)
    expect(calls).toBe(4)
    expect(retrier.failing()).toEqual([])
    await vi.advanceTimersByTimeAsync(60_000)
    expect(calls).toBe(4)
  })

  it('takes the failure of a run that started before a run that succeeded as no failure', async () => {
    const { createRetrier } = await import(retryModule)
    const retrier = createRetrier()
    let failHung!: (err: Error) => void
    const hung = retrier.run('reload', () => new Promise<void>((_resolve, reject) => { failHung = reject }))
    await retrier.run('reload', async () => {}) // the reload after the next reconnect
    failHung(new Error('no answer within 15 s'))
    await hung
    expect(retrier.failing()).toEqual([])
  })

  it('settles a waiting retry when a later run of the same key succeeds, and cancels on request', async () => {
    const { createRetrier } = await import(retryModule)
    const changes = vi.fn()
    const retrier = createRetrier({ onChange: changes })
    const failing = vi.fn(async () => { throw new Error('HTTP 502') })
    await retrier.run('alert:a', failing)
    await retrier.run('alert:a', async () => {})
    expect(retrier.failing()).toEqual([])
    await vi.advanceTimersByTimeAsync(60_000)
    expect(failing).toHaveBeenCalledTimes(1)
    await retrier.run('detail:b', failing)
    retrier.cancel('detail:b')
    expect(retrier.failing()).toEqual([])
    expect(changes).toHaveBeenCalled()
  })

  it('retries nothing once stopped: not a run on its way when it stopped, nor a run asked for after', async () => {
    const { createRetrier } = await import(retryModule)
    const changes = vi.fn()
    const retrier = createRetrier({ onChange: changes })
    let failOnItsWay!: (err: Error) => void
    const onItsWay = retrier.run('alert:a', () => new Promise<void>((_resolve, reject) => { failOnItsWay = reject }))
    const task = vi.fn(async () => { throw new Error('HTTP 502') })
    await retrier.run('alert:b', task)
    retrier.stop() // signed out: the 401 is heard before the request that heard it throws
    failOnItsWay(Object.assign(new Error('missing or invalid bearer token'), { status: 401 }))
    await onItsWay
    await retrier.run('alert:c', task)
    changes.mockClear()
    await vi.advanceTimersByTimeAsync(10 * 60_000)
    expect(task).toHaveBeenCalledTimes(1)
    expect(retrier.failing()).toEqual([])
    expect(changes).not.toHaveBeenCalled()
  })

  it('does not retry a read the server refused the token for (401, 403), and says it failed', async () => {
    const { createRetrier } = await import(retryModule)
    const retrier = createRetrier()
    for (const status of [401, 403]) {
      const task = vi.fn(async () => { throw Object.assign(new Error(`HTTP ${status}`), { status }) })
      await retrier.run(`alert:${status}`, task)
      await vi.advanceTimersByTimeAsync(10 * 60_000)
      expect(task).toHaveBeenCalledTimes(1)
    }
    expect(retrier.failing().map((f: { key: string }) => f.key)).toEqual(['alert:401', 'alert:403'])
  })

  it('spreads the retries of reads that failed together (jitter), between half the backoff and all of it', async () => {
    const { createRetrier } = await import(retryModule)
    const retrier = createRetrier()
    const times: number[] = []
    const t0 = Date.now()
    for (let i = 0; i < 200; i++) await retrier.run(`alert:${i}`, async () => { times.push(Date.now() - t0); throw new Error('HTTP 503') })
    times.length = 0
    await vi.advanceTimersByTimeAsync(1000)
    expect(times.length).toBe(200)
    expect(Math.min(...times)).toBeGreaterThanOrEqual(500)
    // Not one wave: the 200 retries land over the half second, at many different times.
    expect(new Set(times).size).toBeGreaterThan(100)
    const perTenth = new Map<number, number>()
    for (const t of times) perTenth.set(Math.floor(t / 100), (perTenth.get(Math.floor(t / 100)) ?? 0) + 1)
    expect(Math.max(...perTenth.values())).toBeLessThan(80)
    retrier.stop()
  })
})
