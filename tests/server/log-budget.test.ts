/** The log line budget on its own clock: lines per key and window, and what each window held back. */
import { describe, expect, it } from 'vitest'
import { LogBudget } from '../../server/log-budget.js'

describe('LogBudget', () => {
  it('lets a key log its lines per window, and tells at the window\'s end how many it held back', () => {
    let now = 0
    const told: Array<[string, number]> = []
    const budget = new LogBudget(2, 10_000, (key, lines) => told.push([key, lines]), () => now)
    expect([budget.allows('a'), budget.allows('a'), budget.allows('a'), budget.allows('a')]).toEqual([true, true, false, false])
    // Another key has its own lines.
    expect([budget.allows('b'), budget.allows('b'), budget.allows('b')]).toEqual([true, true, false])
    now = 9_999
    expect(budget.allows('a')).toBe(false)
    expect(told).toEqual([])
    now = 10_000
    expect(budget.allows('a')).toBe(true)
    expect(told).toEqual([['a', 3], ['b', 1]])
    expect([budget.allows('a'), budget.allows('a')]).toEqual([true, false])
  })

  it('tells what a window held back even when nothing more comes', async () => {
    const told: Array<[string, number]> = []
    const budget = new LogBudget(1, 50, (key, lines) => told.push([key, lines]))
    expect([budget.allows('quiet-after'), budget.allows('quiet-after')]).toEqual([true, false])
    await expect.poll(() => told).toEqual([['quiet-after', 1]])
  })
})
