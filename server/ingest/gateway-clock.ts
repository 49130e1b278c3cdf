/**
 * Gateways' clocks, measured and put right: each ingest request says when its gateway sent it
 * (`sentAt`), and the server puts that gateway's times (alarms, presence changes) on its own
 * clock by the difference. A gateway's clock may be minutes off (a Raspberry Pi booted before
 * NTP), or set by NTP between an event and its sending.
 */
import type { IngestBatch } from '../../protocol/index.js'
import { CROSSED_CLOCKS_MS } from './cancel.js'

/**
 * What to add to a gateway's times to put them on the server's clock, undefined when unknown
 * (a gateway of an older version does not say when it sent the batch).
 */
export type ClockOffset = number | undefined

/**
 * The gateway's clock against ours, from when it says it sent the batch (`sentAt`). A gateway
 * minutes behind (a Raspberry Pi booted before NTP) stamps its presses minutes in the past:
 * taken as they are, they escalate the moment they are stored, and their time-to-acknowledge
 * counts minutes nobody waited. The measure includes the request's way here, so a difference
 * within CROSSED_CLOCKS_MS (what the gateways' clocks are trusted to anyway) is no correction:
 * the gateway's own stamp stands, as it is stored.
 */
export function gatewayClockOffset (batch: IngestBatch, nowMs: number): ClockOffset {
  if (batch.sentAt === undefined) return undefined
  const offset = nowMs - batch.sentAt
  return Math.abs(offset) <= CROSSED_CLOCKS_MS ? 0 : offset
}

/**
 * A gateway's time on the server's clock, by the measured offset; as stamped when the offset
 * would put it before 1970: no time the gateway received anything, so the offset is what is
 * wrong (a batch saying it was sent in the year 33 658). Moved there, a press's alert was dated
 * before any time the database holds, refused, and the press lost.
 */
export function onOurClock (stampMs: number, clock: ClockOffset): number {
  const moved = stampMs + (clock ?? 0)
  return moved < 0 ? stampMs : moved
}

/**
 * How far ahead of the server's clock a gateway's time may be and still be taken as stamped.
 * Past it the gateway's clock is wrong (a Pi whose RTC says 2099, a bug's `receivedAt`), not
 * early: GREATEST kept a device's last seen time there for good, and a presence change there
 * made every later one look stale (a device gone offline, unreported).
 */
export const AHEAD_AT_MOST_MS = 2 * 60_000

/**
 * What the server derives from a gateway's time (a device's last seen time, a presence change,
 * a report's filing), on the server's clock when that time is more than AHEAD_AT_MOST_MS ahead
 * of it: by the measured offset, never later than now. Otherwise as stamped. (The event itself
 * is stored as stamped: its times against its own gateway's other times, a cancel against its
 * press, stay as they were.)
 */
export function derivedTime (stampMs: number, clock: ClockOffset, nowMs: number): number {
  if (!aheadOfUs(stampMs, nowMs)) return stampMs
  return Math.min(onOurClock(stampMs, clock), nowMs)
}

/** Whether a gateway's time is too far ahead of the server's clock to be taken as stamped. */
export function aheadOfUs (stampMs: number, nowMs: number): boolean {
  return stampMs > nowMs + AHEAD_AT_MOST_MS
}

/**
 * The batch with its presence changes dated on the server's clock (by the measured offset): the
 * server keeps each device's newest change by its date, and a gateway whose clock NTP set back
 * dated a device's `offline` before the `online` it followed (dropped as stale: no alert), or
 * its changes ahead of another gateway's (a device that moved kept looking offline).
 * Changes still more than AHEAD_AT_MOST_MS ahead (the gateway did not say when it sent them, or
 * its times disagree with that) are dated now, a millisecond apart in their own order: dated
 * where they said, they would stand above every later change until then, and dated all at
 * once, an `online` right after an `offline` would be dropped as no newer.
 */
export function presenceOnOurClock (batch: IngestBatch, clock: ClockOffset, nowMs = Date.now()): IngestBatch {
  if (!batch.presence?.length) return batch
  const shifted = batch.presence.map((change) => ({ ...change, at: onOurClock(change.at, clock) }))
  const ahead = shifted.filter((change) => aheadOfUs(change.at, nowMs)).sort((a, b) => a.at - b.at)
  ahead.forEach((change, i) => { change.at = nowMs - (ahead.length - 1 - i) })
  return clock || ahead.length > 0 ? { ...batch, presence: shifted } : batch
}
