/**
 * The gateway's local state (SQLite, WAL): dead letters, presence changes, the device
 * credential cache and small positions. (The outbox of accepted events has its own file,
 * thread and fsync per commit: outbox/.)
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import Sqlite from 'better-sqlite3'
import type { Logger } from 'pino'
import type { CheckpointerData } from './state-db-checkpointer.js'

export type StateDb = Sqlite.Database

export function openStateDb (dataDir: string): StateDb {
  mkdirSync(dataDir, { recursive: true })
  const db = new Sqlite(join(dataDir, 'gateway.sqlite'))
  db.pragma('journal_mode = WAL')
  // NORMAL: a commit survives a crash of the process (kill -9) at once, and a power cut once
  // the WAL is next synced (at checkpoints, which `syncStateDb` runs every 2 s, off the main
  // thread). What lives here is either re-learned (credentials, positions), or its loss in the
  // last moments before a power cut is recovered by the supervision after restart (presence),
  // or diagnostic (dead letters). An fsync per write here, on the main thread, held up every
  // press while thousands of devices reconnected.
  // Accepted events need FULL and have it: they live in outbox.sqlite (outbox/store.ts).
  db.pragma('synchronous = NORMAL')
  db.pragma('busy_timeout = 5000')
  db.exec(`
    CREATE TABLE IF NOT EXISTS dead_letters (
      id          INTEGER PRIMARY KEY AUTOINCREMENT,
      device_id   TEXT,
      topic       TEXT NOT NULL,
      reason      TEXT NOT NULL,
      payload     BLOB,
      received_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS presence_outbox (
      id          INTEGER PRIMARY KEY AUTOINCREMENT,
      body        TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS presence_state (
      device_id   TEXT PRIMARY KEY,
      kind        TEXT NOT NULL,
      state       TEXT NOT NULL,
      last_seen   INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS credentials (
      id          TEXT PRIMARY KEY,
      body        TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS meta (
      key         TEXT PRIMARY KEY,
      value       TEXT NOT NULL
    );
  `)
  // Added after 0.1.0: dead letters are forwarded to the server too.
  const columns = db.prepare('PRAGMA table_info(dead_letters)').all() as Array<{ name: string }>
  if (!columns.some((c) => c.name === 'forwarded')) db.exec('ALTER TABLE dead_letters ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0')
  db.exec('CREATE INDEX IF NOT EXISTS dead_letters_unforwarded ON dead_letters (id) WHERE forwarded = 0')
  return db
}

/** How far the WAL may grow before the main connection checkpoints by itself (see below). */
const FALLBACK_CHECKPOINT_PAGES = 10_000

/**
 * Checkpoints (and so syncs) the state database every `everyMs`: what a power cut can take is
 * that long. The checkpoint runs in a thread of its own (state-db-checkpointer.ts): on a disk
 * busy with the outbox's and PostgreSQL's fsyncs, one took up to 130 ms, and on the main
 * thread that stopped every connection for as long. The main connection's own automatic
 * checkpoint stays as a fallback, for a WAL the thread cannot keep small (a reconnect storm) or
 * a thread that is gone. Returns the stop, which waits for the thread to close its connection.
 */
export function syncStateDb (db: StateDb, log: Logger, everyMs = 2000): () => Promise<void> {
  const worker = new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
    workerData: { entry: new URL('./state-db-checkpointer.ts', import.meta.url).href, file: db.name, everyMs } satisfies CheckpointerData & { entry: string },
    name: 'state-db checkpointer'
  })
  worker.unref()
  db.pragma(`wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`)
  let stopping = false
  let ended = false
  // Not events.once: that would reject on the worker's 'error', unheard until the stop.
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  worker.on('error', (err) => log.error({ err: err.message }, 'state database checkpointer failed'))
  worker.on('exit', () => {
    ended = true
    if (stopping || !db.open) return
    log.warn('state database checkpointer ended; the main thread checkpoints again')
    db.pragma('wal_autocheckpoint = 1000')
  })
  return async () => {
    stopping = true
    if (ended) return
    worker.postMessage('stop')
    // A checkpoint stuck on a failing disk must not hold up the shutdown for ever.
    const timer = setTimeout(() => { void worker.terminate() }, 5000)
    await exited
    clearTimeout(timer)
  }
}

export function getMeta (db: StateDb, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined
  return row?.value
}

export function setMeta (db: StateDb, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value)
}
