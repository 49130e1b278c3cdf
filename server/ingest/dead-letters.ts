/**
 * Publishes the gateways refused, kept with their reason; a resent batch stores each once. And
 * the dead letters the server writes itself, of what its database refused (ingest.ts).
 */
import type { Queryable } from '../db/database.js'
import { topics, type DeadLetter, type GatewayEvent } from '../../protocol/index.js'

export async function storeDeadLetters (tx: Queryable, letters: DeadLetter[]): Promise<number> {
  if (letters.length === 0) return 0
  const rows = await tx.query(`
    INSERT INTO dead_letters (gateway_id, device_id, topic, reason, payload, received_at)
    SELECT gateway_id, device_id, topic, reason, payload, to_timestamp(received_ms / 1000.0)
    FROM jsonb_to_recordset($1::jsonb) AS t(gateway_id text, device_id text, topic text, reason text, payload text, received_ms float8)
    ON CONFLICT (gateway_id, received_at, topic, md5(payload)) DO NOTHING
    RETURNING id`,
  [JSON.stringify(letters.map((l) => ({
    gateway_id: l.gatewayId, device_id: l.deviceId ?? null, topic: l.topic, reason: l.reason, payload: l.payload, received_ms: l.receivedAt
  })))])
  return rows.length
}

/**
 * A dead letter the database takes, whatever it holds: its time may be what was refused (a
 * gateway clock in the year 300 000), kept at the last one a timestamp holds, the same on a
 * resend, so the letter is still kept once; its reason cut to the column's length.
 */
export function storableLetter (letter: DeadLetter): DeadLetter {
  return { ...letter, receivedAt: Math.min(letter.receivedAt, LAST_STORABLE_MS), reason: letter.reason.slice(0, 500) }
}

/** The last time kept as such in a dead letter: the end of the year 9999 (PostgreSQL's last is 294 276). */
const LAST_STORABLE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/** An event as a dead letter: where it was published, when it arrived, what it held (never a cancel's PIN). */
export function eventLetter (e: GatewayEvent, reason: string): DeadLetter {
  // Masked as the gateway masks it in its own dead letters.
  const event = e.event.pin === undefined ? e.event : { ...e.event, pin: '****' }
  return { deviceId: e.deviceId, gatewayId: e.gatewayId, topic: topics.event(e.deviceId), reason, payload: base64Of(event), receivedAt: e.receivedAt }
}

/** A dead letter's payload: the first 4 KiB of the JSON, base64 (as the gateway keeps them). */
export function base64Of (value: unknown): string {
  let json: string
  try {
    json = JSON.stringify(value)
  } catch (err) {
    // Nested too deeply to write out (see storeEvents): what it was is said instead.
    json = JSON.stringify(`not kept: ${(err as Error).message}`)
  }
  return Buffer.from(json).subarray(0, 4096).toString('base64')
}
