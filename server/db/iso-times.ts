/**
 * Times read from the database as the API shows them (ISO 8601), whatever the row holds.
 * PostgreSQL keeps times up to the year 294 276, a JavaScript Date only to 275 760: a row past
 * that (a gateway's `receivedAt: 9e15`, stored before ingest bounded gateway times) is read as
 * an Invalid Date, and `toISOString` threw: every list holding it (devices, events, dead
 * letters, reports) answered 500, for good. Such a time is shown as the last one a Date holds
 * (and PostgreSQL's `±infinity`, which the driver reads as a number, as the first or last):
 * the row shows, and so does every row beside it.
 */
import { LAST_DATE_MS } from '../../protocol/index.js'

/**
 * A time read from the database, epoch ms: NaN past a Date's end, ±Infinity for PostgreSQL's
 * `±infinity` (the driver reads those as numbers, not Dates: `getTime` threw on them).
 */
export function timeMs (value: Date | number): number {
  return value instanceof Date ? value.getTime() : Number(value)
}

export function isoTime (value: Date): string {
  const ms = timeMs(value)
  // A Date from the database is invalid only past its end: PostgreSQL's first time (4713 BC) is within a Date's.
  const shown = Number.isNaN(ms) ? LAST_DATE_MS : Math.max(-LAST_DATE_MS, Math.min(LAST_DATE_MS, ms))
  return new Date(shown).toISOString()
}

export function isoTimeOrNull (value: Date | null | undefined): string | null {
  return value === null || value === undefined ? null : isoTime(value)
}
