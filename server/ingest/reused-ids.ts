/**
 * Event ids reused by a different event (protocol/reused-ids.ts). Without this, a press from a
 * device that repeats old ids would be answered `received` as the duplicate of an old
 * heartbeat, with no alert. An event answered `duplicate` whose id an earlier event holds that
 * it cannot be a copy of is stored again under an id of its own: its receive time added, which
 * a resend through the gateway keeps. A copy of one stored that way (the device redelivering
 * it) stays a duplicate. Only duplicates cost a query; they are rare.
 */
import type { Queryable } from '../db/database.js'
import { isCopyOf, occurrenceOf, REDELIVERY_AT_MOST_MS, renamedEventId, REUSED_MARK, type GatewayEvent, type IngestBatch, type IngestResult } from '../../protocol/index.js'

interface ReusedId {
  /** The event's index in its batch. */
  index: number
  /** The event under the id to store it by. */
  renamed: GatewayEvent
}

/**
 * Stores the batch with `store`, each event whose id a different event holds under an id of its
 * own; the results name the events' own ids. `storedUnderNewId` is called for each stored so
 * now (not when a copy of it comes again).
 *
 * Most are found by their answer, `duplicate`, and stored again after the rest. In a batch
 * holding a cancel they are found first (one query, for the rare batch with a cancel), and
 * stored in their place: stored after the rest, a press reusing an old id would open its alert
 * after the cancel behind it had found none, and the false alarm would stay open. Any other
 * batch is the same stored in any order. (A batch storing the old id at the same moment makes
 * this one's copy a duplicate after all; it is then stored afterwards, as the others.)
 */
export async function storeWithReusedIds (
  db: Queryable,
  batch: IngestBatch,
  store: (batch: IngestBatch) => Promise<IngestResult[]>,
  storedUnderNewId: (e: GatewayEvent) => void
): Promise<IngestResult[]> {
  const counted = (e: GatewayEvent, result: IngestResult | undefined) => { if (result?.status === 'stored') storedUnderNewId(e) }
  const first = batch.events.some((e) => e.event.type === 'cancel')
    ? await reusedIds(db, batch.events, batch.events.map((e) => ({ eventId: e.eventId, status: 'duplicate' })))
    : []
  const events = batch.events.slice()
  for (const { index, renamed } of first) events[index] = renamed
  const results = await store({ ...batch, events })
  for (const { index } of first) counted(batch.events[index]!, results[index])
  const later = await reusedIds(db, events, results)
  if (later.length > 0) {
    const again = await store({ events: later.map((r) => r.renamed) })
    later.forEach(({ index }, j) => {
      counted(batch.events[index]!, again[j])
      results[index] = again[j]!
    })
  }
  // Every answer names the event's own id, whatever it was stored under.
  return results.map((result, i) => ({ ...result, eventId: batch.events[i]!.eventId }))
}

/**
 * The batch's events answered `duplicate` that are not copies of what holds their id, each with
 * the id to store it by: a new one, or, for a copy of an event stored that way, that event's.
 */
async function reusedIds (db: Queryable, events: GatewayEvent[], results: IngestResult[]): Promise<ReusedId[]> {
  const duplicates = events.flatMap((e, index) => results[index]?.status === 'duplicate' ? [{ e, index }] : [])
  if (duplicates.length === 0) return []
  const firsts = new Map((await db.query<{ event_id: string, received_ms: number, device_id: string | null, type: string | null, device_ts_ms: number | null }>(`
    SELECT i.event_id, extract(epoch FROM i.received_at) * 1000 AS received_ms, e.device_id, e.type, extract(epoch FROM e.device_ts) * 1000 AS device_ts_ms
    FROM event_ids i LEFT JOIN LATERAL (
      SELECT device_id, type, device_ts FROM events WHERE events.time = i.received_at AND events.event_id = i.event_id LIMIT 1
    ) e ON true
    WHERE i.event_id = ANY($1::text[])`, [[...new Set(duplicates.map(({ e }) => e.eventId))]])).map((row) => [row.event_id, row]))
  const candidates = duplicates.filter(({ e }) => {
    const first = firsts.get(e.eventId)
    return first !== undefined && !isCopy(e, first, Number(first.received_ms))
  })
  if (candidates.length === 0) return []
  // Stored under a new id before: a copy of that one (the device redelivering it, with a new
  // receive time) is its duplicate, not a third event.
  const renamedBefore = await db.query<{ event_id: string, device_id: string, type: string, device_ts_ms: number | null, time_ms: number }>(`
    SELECT event_id, device_id, type, extract(epoch FROM device_ts) * 1000 AS device_ts_ms, extract(epoch FROM time) * 1000 AS time_ms
    FROM events WHERE device_id = ANY($1::text[]) AND time >= to_timestamp($2 / 1000.0) AND event_id LIKE ANY($3::text[])`, [
    [...new Set(candidates.map(({ e }) => e.deviceId))],
    Math.min(...candidates.map(({ e }) => e.receivedAt)) - REDELIVERY_AT_MOST_MS,
    candidates.map(({ e }) => `${e.eventId.replace(/[\\%_]/g, '\\$&')}${REUSED_MARK}%`)])
  // Nor is a copy of one renamed in this very batch (the gateway sent the event and its
  // redelivery together). Either copy goes under the id its event is stored by, where it is a
  // duplicate that hears what its event heard (a cancel's answer, a report's ticket).
  const renamed: ReusedId[] = []
  const kept: Array<{ e: GatewayEvent, id: string }> = []
  for (const { e, index } of candidates) {
    const before = renamedBefore.find((row) => row.event_id.startsWith(e.eventId + REUSED_MARK) && isCopy(e, row, Number(row.time_ms)))
    const inBatch = kept.find((k) => k.e.eventId === e.eventId && isCopyOf(occurrenceOf(e), occurrenceOf(k.e)))
    const id = before?.event_id ?? inBatch?.id ?? renamedEventId(e.eventId, e.receivedAt)
    if (!before && !inBatch) kept.push({ e, id })
    renamed.push({ index, renamed: { ...e, eventId: id } })
  }
  return renamed
}


/**
 * Whether `e` can be a copy of an event stored earlier with this device, type and device clock,
 * received then. Never one of another device's: the ids are checked now (event-ids.ts), but one
 * stored before under a device's id by another (a gateway forging ids) held that device's next
 * presses as its duplicates. (A device unknown, its event dropped with its chunk, tells nothing.)
 */
function isCopy (e: GatewayEvent, first: { device_id: string | null, type: string | null, device_ts_ms: number | null }, firstReceivedMs: number): boolean {
  if (first.device_id !== null && first.device_id !== e.deviceId) return false
  const ts = first.device_ts_ms === null ? null : Number(first.device_ts_ms)
  return isCopyOf(occurrenceOf(e), { type: first.type, ts, receivedAt: firstReceivedMs })
}
