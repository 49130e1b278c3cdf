/**
 * Reconnect delays: exponential backoff with "full jitter" (a uniform draw between 0 and the
 * exponential ceiling). After a gateway restart a whole ward reconnects; full jitter spreads
 * those reconnects over the window instead of sending them in waves. (p-retry randomizes and
 * then caps at maxTimeout, so every device stuck at the cap would retry in lockstep.)
 *
 * A person's alarm does not wait out that window: a press (hold, tamper, cancel) made while the
 * link is down cuts the wait short (DESIGN.md §1: the button shows within a second that the
 * press was received), and while it waits unsent the ceiling stays at `alarmMaxMs`. Attempts
 * still start `alarmFloorMs` apart at least, one at a time, so a button pressed twenty times
 * does not become twenty connects.
 */
export interface BackoffOptions {
  /** First ceiling, ms. */
  baseMs: number
  /** Largest ceiling, ms. */
  maxMs: number
  /** Largest ceiling while an alarm waits to be sent, ms (default 5 s, never above `maxMs`). */
  alarmMaxMs?: number
  /** Attempts made for an alarm start at least this long after the one before, ms (default 1 s). */
  alarmFloorMs?: number
  /** The jitter's source (tests pass a fixed one). */
  random?: () => number
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 1000, maxMs: 60_000, alarmMaxMs: 5_000, alarmFloorMs: 1_000 })

/** The delay before reconnect attempt `attempt` (0 = first retry). */
export function reconnectDelay (attempt: number, options: BackoffOptions, random: () => number = options.random ?? Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(random() * ceiling)
}

/** The delay before attempt `attempt` while an alarm waits: the same draw under a lower ceiling, never under the floor. */
export function alarmReconnectDelay (attempt: number, options: BackoffOptions, sinceLastAttemptMs: number): number {
  const maxMs = Math.min(options.maxMs, options.alarmMaxMs ?? DEFAULT_BACKOFF.alarmMaxMs!)
  const floor = (options.alarmFloorMs ?? DEFAULT_BACKOFF.alarmFloorMs!) - sinceLastAttemptMs
  return Math.max(floor, reconnectDelay(attempt, { ...options, maxMs }))
}
