/**
 * Presence changes waiting for the server: held in memory for the forwarder, written by the
 * state writer's thread, read back after a restart, and bounded.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { metaWrite, openStateDb, type StateDb } from '../../gateway/state-db.js'
import { StateWriter } from '../../gateway/state-writer.js'
import { PresenceLog } from '../../gateway/presence-log.js'
import type { PresenceChange } from '../../protocol/index.js'
import { quietLog } from '../helpers/system.js'

const change = (n: number, state: 'online' | 'offline' = n % 2 === 0 ? 'online' : 'offline'): PresenceChange =>
  ({ deviceId: `btn-${n % 3}`, gatewayId: 'gw-unit', state, reason: state === 'online' ? 'connected' : 'disconnected', at: 1_000_000 + n })

describe('presence log', () => {
  let dir: string
  let db: StateDb
  let writer: StateWriter

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sos-presence-'))
    db = openStateDb(dir)
    writer = new StateWriter(db.name, quietLog)
  })
  afterEach(async () => {
    await writer.close()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** The gateway restarted: a new log reads what the writer saved. */
  const reopened = async (maxWaiting?: number) => {
    await writer.flushed()
    return new PresenceLog(db, writer, maxWaiting)
  }

  it('hands changes to the forwarder at once, forgets those the server has, and after a restart still holds the rest and each device\'s last state', async () => {
    const log = new PresenceLog(db, writer)
    let appended = 0
    log.on('appended', () => appended++)
    for (let n = 1; n <= 6; n++) log.append(change(n), 'button')
    expect(log.peek(3).map((c) => c.change.at)).toEqual([1_000_001, 1_000_002, 1_000_003])
    await new Promise((resolve) => setImmediate(resolve))
    expect(appended, 'one write per event-loop turn').toBe(1)
    log.remove(log.peek(2).map((c) => c.id))

    const after = await reopened()
    expect(after.peek(10).map((c) => c.change.at)).toEqual([1_000_003, 1_000_004, 1_000_005, 1_000_006])
    expect(after.lastStates().sort((a, b) => a.deviceId.localeCompare(b.deviceId))).toEqual([
      { deviceId: 'btn-0', kind: 'button', state: 'online', lastSeen: 1_000_006 },
      { deviceId: 'btn-1', kind: 'button', state: 'online', lastSeen: 1_000_004 },
      { deviceId: 'btn-2', kind: 'button', state: 'offline', lastSeen: 1_000_005 }
    ])
    // New ids follow the saved ones: a removal after the restart never hits a newer change.
    after.append(change(7), 'button')
    const ids = after.peek(10).map((c) => c.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('holds at most its bound: a flapping device\'s superseded changes go first, a quiet device\'s only one stays, on disk too', async () => {
    const log = new PresenceLog(db, writer, 5)
    const dropped: number[] = []
    log.on('overflow', (n) => dropped.push(n))
    const flap = (n: number): PresenceChange => ({ ...change(n, n % 2 === 0 ? 'online' : 'offline'), deviceId: 'btn-flappy' })
    log.append({ ...change(0, 'offline'), deviceId: 'btn-quiet' }, 'button')
    for (let n = 1; n <= 12; n++) log.append(flap(n), 'button')
    const kept = log.peek(10).map((c) => `${c.change.deviceId}@${c.change.at - 1_000_000}`)
    expect(kept[0]).toBe('btn-quiet@0')
    expect(kept.at(-1)).toBe('btn-flappy@12')
    expect(kept.length).toBeLessThanOrEqual(5)
    expect(dropped.reduce((a, b) => a + b, 0)).toBe(13 - kept.length)
    // Dropped in the same turn they came: their INSERT and DELETE go in one write, in order.
    log.flush()
    await writer.flushed()
    expect(db.prepare('SELECT count(*) AS n FROM presence_outbox').get()).toEqual({ n: kept.length })
    expect((await reopened()).peek(10).map((c) => `${c.change.deviceId}@${c.change.at - 1_000_000}`)).toEqual(kept)
  })

  it('with more devices than its bound, drops the oldest', async () => {
    const log = new PresenceLog(db, writer, 10)
    for (let n = 1; n <= 11; n++) log.append({ ...change(n, 'offline'), deviceId: `btn-${n}` }, 'button')
    expect(log.peek(20).map((c) => c.change.deviceId)).toEqual(['btn-3', 'btn-4', 'btn-5', 'btn-6', 'btn-7', 'btn-8', 'btn-9', 'btn-10', 'btn-11'])
    // Read back with a smaller bound (an upgrade, say): shrunk the same way, on disk too.
    log.flush()
    const smaller = await reopened(4)
    expect(smaller.peek(20).map((c) => c.change.deviceId)).toEqual(['btn-9', 'btn-10', 'btn-11'])
    await writer.flushed()
    expect(db.prepare('SELECT count(*) AS n FROM presence_outbox').get()).toEqual({ n: 3 })
  })

  it('forgets a change the server confirmed in the same turn it came, on disk too', async () => {
    const log = new PresenceLog(db, writer)
    log.append(change(1), 'button')
    log.append(change(2), 'button')
    log.remove([log.peek(1)[0]!.id])
    await new Promise((resolve) => setImmediate(resolve)) // written at the end of the turn
    await writer.flushed()
    expect(db.prepare('SELECT count(*) AS n FROM presence_outbox').get()).toEqual({ n: 1 })
    expect((await reopened()).peek(10).map((c) => c.change.at)).toEqual([1_000_002])
  })

  it('while the writer is far behind (a disk that hangs), merges what it would write instead of queueing every change', async () => {
    const other = new Sqlite(db.name)
    other.exec('BEGIN IMMEDIATE') // the disk "hangs": nothing the writer tries commits
    const stuck = new StateWriter(db.name, quietLog, { busyTimeoutMs: 20, retryMs: 50 })
    try {
      for (let i = 0; i < 100; i++) stuck.write(metaWrite('filler', String(i)))
      const log = new PresenceLog(db, stuck)
      for (let turn = 1; turn <= 50; turn++) {
        log.append({ ...change(turn, turn % 2 === 0 ? 'online' : 'offline'), deviceId: 'btn-flappy' }, 'button')
        await new Promise((resolve) => setImmediate(resolve))
      }
      log.remove(log.peek(40).map((c) => c.id))
      expect(stuck.waiting(), 'nothing more queued for the writer').toBe(100)
      other.exec('COMMIT')
      // The next try writes what was merged: waited for, not timed (a loaded CI machine took
      // longer than the 1.5 s this slept).
      await expect.poll(async () => { await stuck.flushed(); return db.prepare('SELECT count(*) AS n FROM presence_outbox').get() }, { timeout: 15_000, interval: 200 }).toEqual({ n: 10 })
      expect(db.prepare("SELECT state, last_seen FROM presence_state WHERE device_id = 'btn-flappy'").get()).toEqual({ state: 'online', last_seen: 1_000_050 })
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK')
      other.close()
      await stuck.close()
    }
  })
})
