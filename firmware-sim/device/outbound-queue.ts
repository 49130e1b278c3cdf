/**
 * Events waiting to be published, in seq order, bounded. A device that cannot reach the
 * gateway keeps what the person did (presses, cancels, reports) and sends it in order once
 * back. When full, the oldest routine event (heartbeat, test, battery) makes room; if only
 * alarms are queued the new event is dropped, since the queued presses already carry the alarm.
 */
import type { EventType } from '../../protocol/index.js'
import type { WireEvent } from './wire-event.js'

const ROUTINE: ReadonlySet<EventType> = new Set(['heartbeat', 'test', 'battery_low'])

export class OutboundQueue {
  private readonly items: WireEvent[] = []

  constructor (readonly limit = 256) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer')
  }

  /** Adds an event; returns the event that was dropped to respect the bound, if any. */
  push (event: WireEvent): WireEvent | undefined {
    if (this.items.length < this.limit) {
      this.items.push(event)
      return undefined
    }
    const routine = this.items.findIndex((e) => ROUTINE.has(e.type))
    if (routine === -1) return event
    const [dropped] = this.items.splice(routine, 1)
    this.items.push(event)
    return dropped
  }

  peek (): WireEvent | undefined {
    return this.items[0]
  }

  shift (): WireEvent | undefined {
    return this.items.shift()
  }

  /** Whether any queued event is one `match` looks for. */
  some (match: (event: WireEvent) => boolean): boolean {
    return this.items.some(match)
  }

  get size (): number {
    return this.items.length
  }
}
