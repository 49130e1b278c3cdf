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

export interface StoragePolicies {
  /** Compress event chunks older than this many days. */
  compressAfterDays: number
  /** Drop event chunks older than this many days; 0 keeps events forever. */
  retentionDays: number
}

/**
 * Compression and retention of `events`, and the pruning of their ids (TimescaleDB only; a no-op elsewhere). The policies are
 * replaced rather than left alone so a changed setting applies. Alert transitions are the audit
 * trail and are never dropped; the hourly aggregates outlive the raw events they summarize.
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
  })
  return 'applied'
}
