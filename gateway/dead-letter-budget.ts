import { performance } from 'node:perf_hooks'

/** Reasons told apart in one summary at most; the rest are counted together as `other`. */
const MAX_REASONS = 16

/** What a device had refused past its budget in one window. */
export interface HeldBack {
  refused: number
  /** By reason label (publish-pipeline.ts reasonLabel). */
  reasons: Map<string, number>
  /** Where the first of them was published. */
  topic: string
}

/**
 * A budget of dead letters kept whole per device and time window. Every refused publish is still
 * acknowledged, answered `rejected` with its reason and counted (DESIGN §2); only so many a window
 * are kept whole (written, forwarded, stored on the server), enough to see what a faulty device
 * sends and why. A device spraying junk, a thousand a second, would otherwise have a thousand rows
 * a second written and stored. What a window held back is told at its end in one summary per
 * device (`onHeldBack`: how many, for which reasons), as log-budget.ts does for log lines, and
 * then forgotten: the budget holds no more devices than one window saw.
 */
export class DeadLetterBudget {
  private windowStartedAt = -Infinity
  private readonly kept = new Map<string, number>()
  private readonly heldBack = new Map<string, HeldBack>()
  private flushTimer?: NodeJS.Timeout

  constructor (
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly onHeldBack: (deviceId: string, heldBack: HeldBack) => void,
    // Monotonic: a wall clock stepped back would keep a device's letters held back for as long.
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Whether this refused publish of the device may be kept whole as a dead letter. */
  allows (deviceId: string, reason: string, topic: string): boolean {
    const now = this.now()
    if (now - this.windowStartedAt >= this.windowMs) this.startWindow(now)
    const used = this.kept.get(deviceId) ?? 0
    if (used < this.perWindow) {
      this.kept.set(deviceId, used + 1)
      return true
    }
    let held = this.heldBack.get(deviceId)
    if (!held) this.heldBack.set(deviceId, held = { refused: 0, reasons: new Map(), topic })
    held.refused++
    const label = held.reasons.has(reason) || held.reasons.size < MAX_REASONS ? reason : 'other'
    held.reasons.set(label, (held.reasons.get(label) ?? 0) + 1)
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
    for (const [deviceId, held] of this.heldBack) this.onHeldBack(deviceId, held)
    this.heldBack.clear()
    this.kept.clear()
    this.windowStartedAt = now
  }
}

/** The summary's reason, within the 500 characters a dead letter's reason holds. */
export function heldBackReason (held: HeldBack, perWindow: number, windowMs: number): string {
  const reasons = [...held.reasons].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ×${n}`).join(', ')
  // "dead letters", not "refusals": an event kept without telemetry it could not read leaves one
  // too (telemetry_dropped_event_kept), and it was stored, not refused.
  return `over the dead-letter budget (${perWindow} per ${Math.round(windowMs / 1000)} s): ${held.refused} more dead letters answered and counted, not kept whole: ${reasons}`.slice(0, 500)
}
