/**
 * The LED as the person sees it: the alarm's state, with a short cue (a self-test that got
 * through) laid over it for a moment, after which the state comes back. The cue never becomes
 * the state: a self-test opens no alert, so nothing would ever turn it off again. A change of
 * the alarm's state ends a cue at once: what the alarm says always wins.
 */
import type { LedMode } from './outputs.js'

export class Led {
  private mode: LedMode = 'off'
  private cue?: NodeJS.Timeout

  constructor (private readonly drive: (mode: LedMode) => void) {}

  /** The alarm's state, whatever cue is showing. */
  get state (): LedMode { return this.mode }

  show (mode: LedMode): void {
    const covered = this.endCue()
    if (mode !== this.mode || covered) this.drive(mode)
    this.mode = mode
  }

  /** Shows `pattern` for `ms`, then the alarm's state again. */
  flash (pattern: LedMode, ms: number): void {
    clearTimeout(this.cue)
    this.drive(pattern)
    this.cue = setTimeout(() => {
      this.cue = undefined
      this.drive(this.mode)
    }, ms)
  }

  /** Stops a cue without touching the light (the device is stopping). */
  stop (): void {
    this.endCue()
  }

  /** Ends a cue in progress; true if one was showing. */
  private endCue (): boolean {
    if (this.cue === undefined) return false
    clearTimeout(this.cue)
    this.cue = undefined
    return true
  }
}
