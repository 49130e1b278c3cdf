import { performance } from 'node:perf_hooks'

/**
 * Babbling-device shutdown, as an alarm panel shuts down a swinger zone (SIA CP-01): a device
 * whose publishes are refused without pause (malformed, on another's topic, over its routine
 * rate), thousands in seconds, is a looping firmware or a stolen secret. Each refusal was still
 * read, answered and counted, and such a flood took its share of the event loop from every other
 * device's press (bench part 5). Past `refusals` within `windowMs`, its connections are closed and
 * it is refused at CONNECT for `holdOffMs`; then it may come back, and is shut down again if it
 * still babbles. Its supervision reports it offline meanwhile, so the ward sees it.
 *
 * The bar is far above anything a working device sends: its routine rate is a few a second, and
 * alarms are never refused for their number.
 */
export class BabblingDevices {
  private readonly windows = new Map<string, { startedAt: number, refused: number }>()
  private readonly heldOffUntil = new Map<string, number>()

  constructor (
    private readonly options: { readonly refusals: number, readonly windowMs: number, readonly holdOffMs: number },
    // Monotonic: a wall clock stepped back would hold a device off for as long.
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Counts one refused publish of the device; true when this one makes it babbling (close its connections now). */
  refused (deviceId: string): boolean {
    if (this.options.refusals <= 0) return false
    const now = this.now()
    let window = this.windows.get(deviceId)
    if (!window || now - window.startedAt >= this.options.windowMs) {
      if (this.windows.size >= 10_000) this.forgetEnded(now)
      window = { startedAt: now, refused: 0 }
      this.windows.set(deviceId, window)
    }
    if (++window.refused < this.options.refusals) return false
    this.windows.delete(deviceId)
    this.heldOffUntil.set(deviceId, now + this.options.holdOffMs)
    return true
  }

  /** Whether the device is shut down now (refused at CONNECT). */
  heldOff (deviceId: string): boolean {
    const until = this.heldOffUntil.get(deviceId)
    if (until === undefined) return false
    if (this.now() < until) return true
    this.heldOffUntil.delete(deviceId)
    return false
  }

  private forgetEnded (now: number): void {
    for (const [id, window] of this.windows) if (now - window.startedAt >= this.options.windowMs) this.windows.delete(id)
  }
}
