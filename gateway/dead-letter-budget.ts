import { performance } from 'node:perf_hooks'
import { LogBudget } from '../server/log-budget.js'

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
 * a second written and stored. The window is LogBudget's, keyed by device; what it held back is
 * told at its end in one summary per device (`onHeldBack`: how many, for which reasons).
 */
export class DeadLetterBudget {
  private readonly budget: LogBudget
  /** The reasons and first topic of what each device had held back in the window so far. */
  private readonly heldBack = new Map<string, Omit<HeldBack, 'refused'>>()

  constructor (
    perWindow: number,
    windowMs: number,
    onHeldBack: (deviceId: string, heldBack: HeldBack) => void,
    // Monotonic: a wall clock stepped back would keep a device's letters held back for as long.
    now: () => number = () => performance.now()
  ) {
    this.budget = new LogBudget(perWindow, windowMs, (deviceId, refused) => {
      const held = this.heldBack.get(deviceId)!
      this.heldBack.delete(deviceId)
      onHeldBack(deviceId, { refused, ...held })
    }, now)
  }

  /** Whether this refused publish of the device may be kept whole as a dead letter. */
  allows (deviceId: string, reason: string, topic: string): boolean {
    if (this.budget.allows(deviceId)) return true
    let held = this.heldBack.get(deviceId)
    if (!held) this.heldBack.set(deviceId, held = { reasons: new Map(), topic })
    const label = held.reasons.has(reason) || held.reasons.size < MAX_REASONS ? reason : 'other'
    held.reasons.set(label, (held.reasons.get(label) ?? 0) + 1)
    return false
  }

  /** Tells what is held back now (the gateway stopping), without waiting for the window's end. */
  flush (): void {
    this.budget.flush()
  }
}

/** The summary's reason, within the 500 characters a dead letter's reason holds. */
export function heldBackReason (held: HeldBack, perWindow: number, windowMs: number): string {
  const reasons = [...held.reasons].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ×${n}`).join(', ')
  // "dead letters", not "refusals": an event kept without telemetry it could not read leaves one
  // too (telemetry_dropped_event_kept), and it was stored, not refused.
  return `over the dead-letter budget (${perWindow} per ${Math.round(windowMs / 1000)} s): ${held.refused} more dead letters answered and counted, not kept whole: ${reasons}`.slice(0, 500)
}
