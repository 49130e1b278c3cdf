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
 * The batch with its presence changes dated on the server's clock (by the measured offset): the
 * server keeps each device's newest change by its date, and a gateway whose clock NTP set back
 * dated a device's `offline` before the `online` it followed (dropped as stale: no alert), or
 * its changes ahead of another gateway's (a device that moved kept looking offline).
 */
export function presenceOnOurClock (batch: IngestBatch, clock: ClockOffset): IngestBatch {
  if (!clock || !batch.presence?.length) return batch
  return { ...batch, presence: batch.presence.map((change) => ({ ...change, at: change.at + clock })) }
}
