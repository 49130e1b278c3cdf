import { performance } from 'node:perf_hooks'

/**
 * Babbling-connection shutdown, after an alarm panel's swinger shutdown (SIA CP-01): a
 * connection whose publishes are refused without pause (malformed, on another's topic, over its
 * routine rate), thousands in seconds, is a looping firmware or a stolen secret. Each refusal was
 * still read, answered and counted, and such a flood took its share of the event loop from every
 * other device's press (bench part 5). Past `refusals` within `windowMs`, the connection is
 * closed and its client id refused at CONNECT for a hold-off, then let back.
 *
 * A panel never shuts down a police-emergency zone, and a device's own alarms must not wait long
 * behind its babble: the first hold-off is short (`firstHoldOffMs`), and it doubles only while the
 * same client id is shut down again within `rememberMs`, up to `holdOffMs`. Kept per client id:
 * a service tool's connection (`{id}:{suffix}`) that babbles is held off, not the device's own.
 *
 * The bar is far above anything a working device sends: its routine rate is a few a second,
 * alarms are never refused for their number, and heartbeats over the rate limit are dropped
 * without an answer, so they do not count (firmware that queued hours of them offline sends
 * them all at once when it is back).
 */
export class BabblingConnections {
  private readonly windows = new Map<string, { startedAt: number, refused: number }>()
  private readonly heldOff = new Map<string, { until: number, holdOffMs: number, at: number }>()
  private prunedAt = -Infinity

  constructor (
    private readonly options: { readonly refusals: number, readonly windowMs: number, readonly firstHoldOffMs: number, readonly holdOffMs: number, readonly rememberMs: number },
    // Monotonic: a wall clock stepped back would hold a connection off for as long.
    private readonly now: () => number = () => performance.now()
  ) {}

  /**
   * Counts one refused publish of the client id; the hold-off it now gets, in ms, when this one
   * makes it babbling (close it now), else 0. Refusals while it is held off (the rest of a read
   * already under way) are not counted again.
   */
  refused (clientId: string): number {
    if (this.options.refusals <= 0) return 0
    const now = this.now()
    if (this.heldOffFor(clientId, now) > 0) return 0
    this.prune(now)
    let window = this.windows.get(clientId)
    if (!window || now - window.startedAt >= this.options.windowMs) {
      window = { startedAt: now, refused: 0 }
      this.windows.set(clientId, window)
    }
    if (++window.refused < this.options.refusals) return 0
    this.windows.delete(clientId)
    const before = this.heldOff.get(clientId)
    const again = before !== undefined && now - before.at < this.options.rememberMs
    const holdOffMs = again ? Math.min(this.options.holdOffMs, before.holdOffMs * 2) : Math.min(this.options.holdOffMs, this.options.firstHoldOffMs)
    this.heldOff.set(clientId, { until: now + holdOffMs, holdOffMs, at: now })
    return holdOffMs
  }

  /** How much longer the client id is refused at CONNECT, ms (0: it may connect). */
  heldOffFor (clientId: string, now = this.now()): number {
    const held = this.heldOff.get(clientId)
    return held === undefined ? 0 : Math.max(0, held.until - now)
  }

  /** Client ids refused at CONNECT now. */
  heldOffCount (): number {
    const now = this.now()
    let count = 0
    for (const held of this.heldOff.values()) if (held.until > now) count++
    return count
  }

  /** At most once a window: forgets ended windows, and hold-offs past remembering. */
  private prune (now: number): void {
    if (now - this.prunedAt < this.options.windowMs) return
    this.prunedAt = now
    for (const [id, window] of this.windows) if (now - window.startedAt >= this.options.windowMs) this.windows.delete(id)
    for (const [id, held] of this.heldOff) if (now - held.at >= this.options.rememberMs && held.until <= now) this.heldOff.delete(id)
  }
}
