/**
 * The gateway's state database is checkpointed (copied from its WAL into the file, and synced)
 * by a thread of its own, every interval: what a power cut can take is that interval, and the
 * broker's thread never waits for that fsync.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { getMeta, openStateDb, setMeta, syncStateDb } from '../../gateway/state-db.js'
import { eventually, quietLog } from '../helpers/system.js'

describe('state database', () => {
  const dirs: string[] = []
  afterEach(() => { for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true }) })
  const tempDir = () => { const dir = mkdtempSync(join(tmpdir(), 'sos-state-')); dirs.push(dir); return dir }

  /** The database file as a power cut would leave it with its WAL lost: the file alone. */
  const fileAlone = (dir: string, key: string) => {
    const copy = tempDir()
    copyFileSync(join(dir, 'gateway.sqlite'), join(copy, 'gateway.sqlite'))
    const db = new Sqlite(join(copy, 'gateway.sqlite'))
    try {
      return getMeta(db, key)
    } catch {
      return undefined // not even the tables are in the file yet
    } finally {
      db.close()
    }
  }

  it('checkpoints from its own thread: after the interval the file alone holds what was written', async () => {
    const dir = tempDir()
    const db = openStateDb(dir)
    const stop = syncStateDb(db, quietLog, 100)
    try {
      setMeta(db, 'position', '41')
      setMeta(db, 'position', '42')
      // The main connection's own automatic checkpoint waits for thousands of pages: only the
      // thread can have put this into the file.
      expect(await eventually(async () => fileAlone(dir, 'position') === '42' ? true : undefined, 5000, 'a checkpoint')).toBe(true)
    } finally {
      await stop()
      db.close()
    }
    // Stopped: its connection is closed, so the gateway's own close is the last one.
    expect(fileAlone(dir, 'position')).toBe('42')
  })
})
