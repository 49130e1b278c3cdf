/**
 * Keyset paging for the lists (alerts, events, reports). Paging by `to=` the time of the last
 * row seen skipped rows or showed them twice: many rows share a time (the offline alerts of a
 * lost gateway share one `opened_at`; events arrive thousands a second). So each list is ordered
 * by its time and then its id, and a page ends where the next one starts: after its last row's
 * (time, id), whatever shares that time (routes/paging.ts carries it in a cursor).
 *
 * Each query bounds the time on its own too (`time <= $t AND (time, id) < ($t, $id)`): the
 * indexes are on the time alone, and a row comparison alone is no bound for them, so a deep
 * page read every newer row first.
 *
 * The time is the database's own text of it (microseconds), not a JavaScript Date
 * (milliseconds): rounded, the comparison would skip or repeat the rows within that millisecond.
 */

/**
 * A select list's expression for a row's position, selected as `position`: its time as
 * PostgreSQL's exact UTC text, which `$n::timestamptz` reads back to the microsecond.
 */
export const positionOf = (timeColumn: string) => `to_char(${timeColumn} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position`

/** Where a row stands in its list: its time (exact text) and id. */
export interface Position { time: string, id: string }

/** A page of a list, and where the next one starts when this one is full. */
export interface Paged<T> { items: T[], next?: Position }

/**
 * Rows read with `LIMIT limit` (and a `position` column) as a page: a full page has a next one
 * after its last row; a shorter one is the last.
 */
export function paged<R extends { position: string }, T> (rows: R[], limit: number, idOf: (row: R) => string, view: (row: R) => T): Paged<T> {
  const last = rows.at(-1)
  return { items: rows.map(view), ...(last && rows.length >= limit ? { next: { time: last.position, id: idOf(last) } } : {}) }
}
