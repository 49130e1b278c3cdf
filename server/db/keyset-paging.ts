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
 * The time is carried as whole microseconds since 1970, the database's own precision, computed
 * and read back by the database in integer arithmetic: a JavaScript Date (milliseconds) would
 * skip or repeat the rows within a millisecond, and a date's text has no fixed shape past year
 * 9999 or before year 1 (where a gateway's clock put some rows).
 */

/**
 * A select list's expression for a row's position, selected as `position`: its time in
 * microseconds since 1970, as text (exact beyond a JavaScript number), or NULL for ±infinity.
 */
export const positionOf = (timeColumn: string) =>
  `CASE WHEN isfinite(${timeColumn}) THEN (extract(epoch FROM ${timeColumn}) * 1000000)::int8::text END AS position`

/**
 * The time a position names, as SQL of parameter `$n` (microseconds since 1970, text): days and
 * microseconds apart, so each product is exact (an interval times a bigint is a float product).
 */
const timeAt = (parameter: string) =>
  `(timestamptz 'epoch' + (${parameter}::int8 / 86400000000) * interval '1 day' + (${parameter}::int8 % 86400000000) * interval '1 microsecond')`

/**
 * The condition "after the cursor's row, in the list's order" (`<` newest first, `>` oldest
 * first), true without a cursor: `$time` the position's microseconds, `$id` its id (cast to the
 * id column's type). The time alone is bounded too, so the time index stops the scan.
 */
export function afterPosition (columns: { time: string, id: string, idType?: 'text' | 'int8' }, params: { time: string, id: string }, beyond: '<' | '>' = '<'): string {
  const at = timeAt(params.time)
  return `(${params.time}::text IS NULL OR (${columns.time} ${beyond}= ${at} AND (${columns.time}, ${columns.id}) ${beyond} (${at}, ${params.id}::${columns.idType ?? 'text'})))`
}

/** The earliest and latest microseconds a position may name: PostgreSQL's first day and JavaScript's last. */
export const POSITION_RANGE = { first: -210_866_803_200_000_000n, last: 8_640_000_000_000_000_000n }

/** Where a row stands in its list: its time (microseconds since 1970, as text) and id. */
export interface Position { time: string, id: string }

/** A page of a list, and where the next one starts when this one is full. */
export interface Paged<T> { items: T[], next?: Position }

/**
 * Rows read with `LIMIT limit` (and a `position` column) as a page: a full page has a next one
 * after its last row; a shorter one is the last.
 */
export function paged<R extends { position: string | null }, T> (rows: R[], limit: number, idOf: (row: R) => string, view: (row: R) => T): Paged<T> {
  const last = rows.at(-1)
  // A last row at ±infinity (none since ingest bounds times) has no position to start after.
  return { items: rows.map(view), ...(last && last.position !== null && rows.length >= limit ? { next: { time: last.position, id: idOf(last) } } : {}) }
}
