/**
 * Reconnect delays: exponential backoff with "full jitter" (a uniform draw between 0 and the
 * exponential ceiling). After a gateway restart a whole ward reconnects; full jitter spreads
 * those reconnects over the window instead of sending them in waves. (p-retry randomizes and
 * then caps at maxTimeout, so every device stuck at the cap would retry in lockstep.)
 */
export interface BackoffOptions {
  /** First ceiling, ms. */
  baseMs: number
  /** Largest ceiling, ms. */
  maxMs: number
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 1000, maxMs: 60_000 })

/** The delay before reconnect attempt `attempt` (0 = first retry). */
export function reconnectDelay (attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(random() * ceiling)
}
