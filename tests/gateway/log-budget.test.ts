/** The log line budget on its own clock: lines per key and window, and the count held back. */
import { describe, expect, it } from 'vitest'
import { LogBudget } from '../../gateway/log-budget.js'

describe('LogBudget', () => {
  it('lets a key log its lines per window, holds back the rest, and the next line says how many', () => {
    let now = 0
    const budget = new LogBudget(2, 10_000, () => now)
    expect([budget.take('a'), budget.take('a'), budget.take('a'), budget.take('a')]).toEqual([0, 0, undefined, undefined])
    // Another key has its own lines.
    expect(budget.take('b')).toBe(0)
    now = 9_999
    expect(budget.take('a')).toBeUndefined()
    now = 10_000
    expect([budget.take('a'), budget.take('a'), budget.take('a')]).toEqual([3, 0, undefined])
    now = 25_000
    expect(budget.take('a')).toBe(1)
  })
})
