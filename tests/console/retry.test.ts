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
    const retrier = createRetrier()
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
})
