import { performance } from 'node:perf_hooks'

/**
 * A budget of log lines per key (a device, a refusal reason) and time window, for the gateway
 * and the server alike. Refused input is still acknowledged, dead-lettered, counted and answered
 * one by one (DESIGN §2); only its log lines are budgeted, so a device spraying junk or a
 * password-guessing flood costs a few lines a window instead of one per packet, and cannot bury
 * the lines an operator needs among its own; a database outage on the server, a few lines
 * instead of a stack per request. What a window held back is told at its end, in one line per
 * key (`onHeldBack`), and then forgotten: the budget holds no more keys than one window saw.
 */
export class LogBudget {
  private windowStartedAt = -Infinity
  private readonly logged = new Map<string, number>()
  private readonly heldBack = new Map<string, number>()
  private flushTimer?: NodeJS.Timeout

  constructor (
    private readonly linesPerWindow: number,
    private readonly windowMs: number,
    private readonly onHeldBack: (key: string, lines: number) => void,
    // Monotonic: a wall clock stepped back would keep a key muted for as long.
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Whether a line for `key` may be logged now. */
  allows (key: string): boolean {
    const now = this.now()
    if (now - this.windowStartedAt >= this.windowMs) this.startWindow(now)
    const used = this.logged.get(key) ?? 0
    if (used < this.linesPerWindow) {
      this.logged.set(key, used + 1)
      return true
    }
    this.heldBack.set(key, (this.heldBack.get(key) ?? 0) + 1)
    // Told at the window's end even if nothing more comes (unref'd: it never holds the process).
    this.flushTimer ??= setTimeout(() => this.startWindow(this.now()), Math.max(0, this.windowStartedAt + this.windowMs - now)).unref()
    return false
  }

  /** Tells what is held back now (the gateway stopping), without waiting for the window's end. */
  flush (): void {
    this.startWindow(this.now())
  }

  private startWindow (now: number): void {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    for (const [key, lines] of this.heldBack) this.onHeldBack(key, lines)
    this.heldBack.clear()
    this.logged.clear()
    this.windowStartedAt = now
  }
}
