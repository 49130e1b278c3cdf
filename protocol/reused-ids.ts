/**
 * Event ids reused by a different event. An event's id is (device, boot, seq): a device that
 * cannot keep its seq must send a new `boot` after each start (DESIGN §3). One that does not
 * (a board reset, or one replaced under the same id) repeats old ids, and its press would be
 * taken for a copy of an old event and dropped. The gateway's outbox and the server tell the
 * two apart by the same rule, and the server stores such an event under `renamedEventId`.
 */
import type { GatewayEvent } from './ingest.js'

/** A copy of an event (a QoS 1 redelivery, a gateway's resend) comes within this of the first. */
export const REDELIVERY_AT_MOST_MS = 24 * 3600_000
/** Between an event id reused by a different event and the receive time that tells them apart. */
export const REUSED_MARK = '#reused@'

/** What tells two events under one id apart: type, device clock, gateway receive time. */
export interface EventOccurrence { type: string | null, ts?: number | null, receivedAt: number }

/** An accepted event's occurrence. */
export function occurrenceOf (e: GatewayEvent): EventOccurrence {
  return { type: e.event.type, ts: e.event.ts, receivedAt: e.receivedAt }
}

/**
 * Whether `later` can be a copy of `first`: the same type, and the same device clock reading
 * (to the millisecond, as a device's clock may round), or, where the device has no clock, a day
 * apart at most. A device with no clock whose reused id lands on an earlier event of the same
 * type within a day is still taken for a copy: nothing tells them apart.
 */
export function isCopyOf (later: EventOccurrence, first: EventOccurrence): boolean {
  if (first.type !== null && later.type !== null && first.type !== later.type) return false
  if (first.ts === null || first.ts === undefined || later.ts === null || later.ts === undefined) {
    return later.receivedAt - first.receivedAt <= REDELIVERY_AT_MOST_MS
  }
  return Math.abs(first.ts - later.ts) <= 1
}

/** The id an event is kept under when an earlier, different event holds its own. */
export function renamedEventId (eventId: string, receivedAt: number): string {
  return `${eventId}${REUSED_MARK}${receivedAt}`
}
