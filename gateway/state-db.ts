/**
 * The gateway's local state (SQLite, WAL): dead letters, presence changes, the device
 * credential cache, retained downlink, alert states devices have not confirmed yet, and small
 * positions. Opened and read on the broker's
 * thread at start-up only; after that it is written by a thread of its own (state-writer.ts)
 * and what the broker needs is kept in memory. (The outbox of accepted events has its own
 * file, thread and fsync per commit: outbox/.)
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import type { Write } from './state-writer.js'

export type StateDb = Sqlite.Database

export function openStateDb (dataDir: string): StateDb {
  mkdirSync(dataDir, { recursive: true })
  const db = new Sqlite(join(dataDir, 'gateway.sqlite'))
  db.pragma('journal_mode = WAL')
  // NORMAL: a commit survives a crash of the process (kill -9) at once, and a power cut once
  // the WAL is next synced (at checkpoints, which the writer thread runs every 2 s). What
  // lives here is either re-learned (credentials, positions), or its loss in the last moments
  // before a crash is recovered by the supervision after restart (presence), or diagnostic
  // (dead letters). An fsync per write here held up every press while thousands of devices
  // reconnected. Accepted events need FULL and have it: they live in outbox.sqlite.
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
    CREATE TABLE IF NOT EXISTS verified_secrets (
      id          TEXT PRIMARY KEY,
      secret_hash TEXT NOT NULL,
      digest      BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS retained (
      topic       TEXT PRIMARY KEY,
      body        TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS unconfirmed_acks (
      device_id   TEXT NOT NULL,
      alert_id    TEXT NOT NULL,
      state       TEXT NOT NULL,
      body        TEXT NOT NULL,
      at          INTEGER NOT NULL,
      PRIMARY KEY (device_id, alert_id)
    );
  `)
  // Added after 0.1.0: dead letters are forwarded to the server too.
  const columns = db.prepare('PRAGMA table_info(dead_letters)').all() as Array<{ name: string }>
  if (!columns.some((c) => c.name === 'forwarded')) db.exec('ALTER TABLE dead_letters ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0')
  db.exec('CREATE INDEX IF NOT EXISTS dead_letters_unforwarded ON dead_letters (id) WHERE forwarded = 0')
  return db
}

export function getMeta (db: StateDb, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined
  return row?.value
}

/** Sets `key` (through the writer thread, as every write after start-up). */
export function metaWrite (key: string, value: string): Write {
  return { sql: 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', params: [key, value] }
}
