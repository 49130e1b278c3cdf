/**
 * A budget of log lines per key (a device, a refusal reason) and time window. Refused input is
 * still acknowledged, dead-lettered, counted and answered one by one (DESIGN §2); only its log
 * lines are budgeted, so a device spraying junk or a password-guessing flood costs a few lines a
 * window instead of one per packet, and cannot bury the lines an operator needs among its own.
 * The next line a key logs says how many of its lines were held back before it.
 */
export class LogBudget {
  private windowStartedAt = -Infinity
  private readonly logged = new Map<string, number>()
  private readonly heldBack = new Map<string, number>()

  constructor (private readonly linesPerWindow: number, private readonly windowMs: number, private readonly now: () => number = Date.now) {}

  /**
   * Whether to log a line for `key`: undefined to hold it back, otherwise how many lines of this
   * key were held back since its last one (to log with it).
   */
  take (key: string): number | undefined {
    const now = this.now()
    if (now - this.windowStartedAt >= this.windowMs) {
      this.windowStartedAt = now
      this.logged.clear()
    }
    const used = this.logged.get(key) ?? 0
    if (used >= this.linesPerWindow) {
      this.heldBack.set(key, (this.heldBack.get(key) ?? 0) + 1)
      return undefined
    }
    this.logged.set(key, used + 1)
    const held = this.heldBack.get(key) ?? 0
    this.heldBack.delete(key)
    return held
  }
}
