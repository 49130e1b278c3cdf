/**
 * TimescaleDB, when the database has it: detection, and the storage policies whose ages come
 * from configuration (set again at every start, so changing the setting takes effect).
 */
import type { Database, Queryable } from './database.js'

/**
 * Creates the extension when the server offers it. A server that lists it but cannot load it
 * (not in shared_preload_libraries, no privilege) is treated as plain PostgreSQL: the savepoint
 * keeps the surrounding migration transaction usable.
 */
export async function enableTimescale (tx: Queryable): Promise<boolean> {
  const available = await tx.query("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
  if (available.length === 0) return false
  await tx.query('SAVEPOINT enable_timescaledb')
  try {
    await tx.query('CREATE EXTENSION IF NOT EXISTS timescaledb')
    await tx.query('RELEASE SAVEPOINT enable_timescaledb')
    return true
  } catch {
    await tx.query('ROLLBACK TO SAVEPOINT enable_timescaledb')
    return false
  }
}

/** The installed TimescaleDB version, or null on plain PostgreSQL / PGlite. */
export async function timescaleVersion (db: Queryable): Promise<string | null> {
  const rows = await db.query<{ extversion: string }>("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
  return rows[0]?.extversion ?? null
}

/** Whether `view` is a continuous aggregate here (a plain view of the same name without TimescaleDB). */
export async function isContinuousAggregate (db: Queryable, view: string): Promise<boolean> {
  if (await timescaleVersion(db) === null) return false
  const rows = await db.query(
    'SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_schema = current_schema() AND view_name = $1', [view])
  return rows.length > 0
}

export interface StoragePolicies {
  /** Compress event chunks older than this many days. */
  compressAfterDays: number
  /** Drop event chunks older than this many days; 0 keeps events forever. */
  retentionDays: number
}

/**
 * Compression and retention of `events`, the pruning of their ids, and the refresh windows of
 * the hourly aggregates (TimescaleDB only; a no-op elsewhere). The policies are replaced rather
 * than left alone so a changed setting applies. Alert transitions are the audit trail and are
 * never dropped; the hourly aggregates outlive the raw events they summarize.
 */
export async function applyStoragePolicies (db: Database, policies: StoragePolicies): Promise<'applied' | 'no-timescaledb' | 'events-not-hypertable'> {
  if (await timescaleVersion(db) === null) return 'no-timescaledb'
  // The extension came after migration 3 made `events` a plain table (enabled later by hand,
  // or a dump restored into a TimescaleDB server): no policy applies, and the server still serves.
  const hypertable = await db.query("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = current_schema() AND hypertable_name = 'events'")
  if (hypertable.length === 0) return 'events-not-hypertable'
  await db.transaction(async (tx) => {
    await tx.query("SELECT remove_compression_policy('events', if_exists => true)")
    await tx.query("SELECT add_compression_policy('events', compress_after => make_interval(days => $1))", [policies.compressAfterDays])
    await tx.query("SELECT remove_retention_policy('events', if_exists => true)")
    await tx.query("SELECT delete_job(job_id) FROM timescaledb_information.jobs WHERE proc_name = 'prune_event_ids'")
    if (policies.retentionDays > 0) {
      await tx.query("SELECT add_retention_policy('events', drop_after => make_interval(days => $1))", [policies.retentionDays])
      // Event ids outlive their events by two days: chunks are a day wide and are dropped only
      // once wholly past the retention, and a resent event still stored must still be a duplicate.
      await tx.query("SELECT add_job('prune_event_ids', INTERVAL '1 hour', config => jsonb_build_object('keep', make_interval(days => $1 + 2)))", [policies.retentionDays])
    }
    await applyRefreshPolicies(tx, policies.retentionDays)
  })
  return 'applied'
}

/** The hourly continuous aggregates (migration 3), with the hypertable each one reads. */
const AGGREGATES = [
  { view: 'alerts_hourly', source: 'alert_transitions' },
  { view: 'alert_response_hourly', source: 'alert_transitions' },
  { view: 'device_health_hourly', source: 'events' }
] as const

/**
 * How far back each refresh reaches, in hours; null = the whole history.
 *
 * Late rows are the reason: a gateway's outbox has no age limit, so a press or a heartbeat can
 * arrive days late, after a long outage. A refresh recomputes only the buckets invalidated by
 * writes within its window, so a window over all of history costs little when nothing changed
 * there; but a row below the window is never counted, since the aggregate answers from its
 * materialization below the watermark (real-time aggregation covers only above it).
 * - Over the audit trail (never dropped): all of history.
 * - Over events: within their retention, less a margin. A refresh over hours whose chunks were
 *   dropped recomputes them from what is left, erasing the summaries that outlive the events.
 *   Chunks are a day wide and dropped whole once past the retention, so everything newer than
 *   the retention is still there; the margin (a day, half the retention when shorter) keeps
 *   the window clear of the chunk the retention job may drop next.
 */
export function refreshStartHours (source: 'alert_transitions' | 'events', retentionDays: number): number | null {
  if (source === 'alert_transitions' || retentionDays <= 0) return null
  const retentionHours = retentionDays * 24
  return Math.floor(retentionHours - Math.min(24, retentionHours / 2))
}

/**
 * Sets each aggregate's refresh policy again: every 15 minutes, up to an hour ago, back as far as
 * refreshStartHours says. Rows above the watermark (the end of what is materialized, an hour or a
 * little more back) are read raw as they are asked for and show at once; a late row below it
 * shows at the policy's next run, within 15 minutes.
 */
async function applyRefreshPolicies (tx: Queryable, retentionDays: number): Promise<void> {
  for (const { view, source } of AGGREGATES) {
    if (!await isContinuousAggregate(tx, view)) continue
    const startHours = refreshStartHours(source, retentionDays)
    await tx.query('SELECT remove_continuous_aggregate_policy($1::regclass, if_exists => true)', [view])
    await tx.query(`SELECT add_continuous_aggregate_policy($1::regclass,
      start_offset => justify_hours(make_interval(hours => $2::int)),
      end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')`, [view, startHours])
  }
}
