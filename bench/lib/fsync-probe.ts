/**
 * How long one durable SQLite commit takes on the disk under the gateway's DATA_DIR (WAL,
 * synchronous=FULL, as the outbox does). PUBACK latency cannot be lower than this: an event
 * is acknowledged only after its commit, so it belongs beside the PUBACK figures.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { summarize, round } from './stats.js'

export function probeCommitLatency (parentDir: string, commits = 100): { p50: number, p99: number } {
  const dir = mkdtempSync(join(parentDir, 'fsync-probe-'))
  const db = new Sqlite(join(dir, 'probe.sqlite'))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.exec('CREATE TABLE t (v TEXT)')
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)')
    const samples: number[] = []
    for (let i = 0; i < commits; i++) {
      const t0 = performance.now()
      insert.run('x'.repeat(200))
      samples.push(performance.now() - t0)
    }
    const s = summarize(samples)
    return { p50: round(s.p50, 2), p99: round(s.p99, 2) }
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
