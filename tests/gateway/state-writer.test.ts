/**
 * The gateway's state database is written by a thread of its own (gateway/state-writer.ts):
 * in order, one transaction per write, retried while the disk refuses, and checkpointed
 * (copied from its WAL into the file, and synced) every interval, so what a power cut can take
 * is that interval and the broker's thread never waits for the disk.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { getMeta, metaWrite, openStateDb } from '../../gateway/state-db.js'
import { StateWriter } from '../../gateway/state-writer.js'
import { eventually, quietLog } from '../helpers/system.js'

describe('state database writer', () => {
  const dirs: string[] = []
  const closers: Array<() => unknown> = []
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close()
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })
  const tempDir = () => { const dir = mkdtempSync(join(tmpdir(), 'sos-state-')); dirs.push(dir); return dir }
  const open = (options: ConstructorParameters<typeof StateWriter>[2] = {}) => {
    const dir = tempDir()
    const db = openStateDb(dir)
    const writer = new StateWriter(db.name, quietLog, options)
    closers.push(() => db.close(), () => writer.close())
    return { dir, db, writer }
  }

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
    const { dir, db, writer } = open({ checkpointEveryMs: 100 })
    writer.write(metaWrite('position', '41'))
    writer.write(metaWrite('position', '42'))
    expect(await eventually(async () => fileAlone(dir, 'position') === '42' ? true : undefined, 5000, 'a checkpoint')).toBe(true)
    await writer.close()
    db.close()
    expect(fileAlone(dir, 'position')).toBe('42')
  })

  it('writes in order, each write one transaction, and says when all queued so far is committed', async () => {
    const { db, writer } = open()
    const seen: string[] = []
    for (let i = 1; i <= 200; i++) {
      writer.write(metaWrite('n', String(i)), { sql: 'INSERT INTO presence_outbox (id, body) VALUES (?, ?)', params: [i, Buffer.from(`change ${i}`)] })
    }
    expect(writer.waiting()).toBeGreaterThan(0)
    await writer.flushed()
    expect(writer.waiting()).toBe(0)
    seen.push(getMeta(db, 'n')!)
    const rows = db.prepare('SELECT id, body FROM presence_outbox ORDER BY id').all() as Array<{ id: number, body: Buffer }>
    expect(seen).toEqual(['200'])
    expect(rows).toHaveLength(200)
    // A Buffer crosses to the thread and is stored as the same bytes.
    expect(Buffer.from(rows[41]!.body).toString()).toBe('change 42')
  })

  it('retries a write the disk refuses, with every later write waiting behind it in order, and says so once each way', async () => {
    const { db, writer } = open({ busyTimeoutMs: 50, retryMs: 100 })
    const events: string[] = []
    writer.on('failing', (err) => events.push(`failing: ${err.message}`))
    writer.on('recovered', () => events.push('recovered'))
    // Another connection holds the write lock, as a disk or a process that will not let go.
    const other = new Sqlite(db.name)
    closers.push(() => other.close())
    other.exec('BEGIN IMMEDIATE')
    writer.write(metaWrite('first', '1'))
    writer.write({ sql: 'DELETE FROM meta WHERE key = ?', params: ['first'] }, metaWrite('second', '2'))
    await eventually(async () => events.length > 0 ? true : undefined, 5000, 'the failure reported')
    await new Promise((resolve) => setTimeout(resolve, 400)) // several retries
    expect(events).toEqual(['failing: database is locked'])
    expect(writer.waiting()).toBe(2)
    other.exec('COMMIT')
    await writer.flushed()
    expect(events).toEqual(['failing: database is locked', 'recovered'])
    // The delete ran after the insert it follows, not before.
    expect(getMeta(db, 'first')).toBeUndefined()
    expect(getMeta(db, 'second')).toBe('2')
  })

  it('drops a write SQLite refuses for what it says, and goes on with the next', async () => {
    const { db, writer } = open()
    writer.write({ sql: 'INSERT INTO presence_outbox (id, body) VALUES (?, ?)', params: [1, 'a'] })
    writer.write({ sql: 'INSERT INTO presence_outbox (id, body) VALUES (?, ?)', params: [1, 'again'] }, metaWrite('lost', 'with it'))
    writer.write({ sql: 'INSERT INTO no_such_table VALUES (?)', params: [1] })
    writer.write(metaWrite('after', 'yes'))
    await writer.flushed()
    expect(db.prepare('SELECT body FROM presence_outbox').all()).toEqual([{ body: 'a' }])
    expect(getMeta(db, 'lost')).toBeUndefined() // one transaction: all of it or none
    expect(getMeta(db, 'after')).toBe('yes')
  })

  it('closes after writing what was queued; on a disk that never lets go it gives up after its wait', async () => {
    const { db, writer } = open()
    for (let i = 0; i < 50; i++) writer.write(metaWrite('last', String(i)))
    expect(await writer.close()).toBe(true)
    expect(getMeta(db, 'last')).toBe('49')
    writer.write(metaWrite('last', 'after close')) // logged, not saved, no throw
    expect(getMeta(db, 'last')).toBe('49')

    const stuck = open({ busyTimeoutMs: 50, retryMs: 50, closeWaitMs: 300 })
    const events: string[] = []
    stuck.writer.on('failing', () => events.push('failing'))
    stuck.writer.on('recovered', () => events.push('recovered'))
    const other = new Sqlite(stuck.db.name)
    closers.push(() => other.close())
    other.exec('BEGIN IMMEDIATE')
    for (let i = 0; i < 20; i++) stuck.writer.write(metaWrite('never', String(i)))
    // From the first refusal: the thread's own start (loading its modules) is not the wait.
    await eventually(async () => events.length > 0 ? true : undefined, 10_000, 'the first refusal')
    const started = Date.now()
    expect(await stuck.writer.close(), 'the thread closed its connection').toBe(true)
    // Given up once the wait was over, the writes behind untried (each could wait as long).
    expect(Date.now() - started).toBeLessThan(1500)
    expect(events, 'nothing was saved, so nothing recovered').toEqual(['failing'])
    other.exec('ROLLBACK')
    expect(getMeta(stuck.db, 'never')).toBeUndefined()
  })

  it('sheds the writes posted as sheddable while it is far behind, and tells how long writes have waited', async () => {
    const { db, writer } = open({ busyTimeoutMs: 20, retryMs: 50, maxWaiting: 3 })
    let shed = 0
    writer.on('shed', () => shed++)
    expect(writer.waitMs()).toBe(0)
    const other = new Sqlite(db.name)
    closers.push(() => other.close())
    other.exec('BEGIN IMMEDIATE')
    writer.writeSheddable(metaWrite('letter', '1'))
    writer.write(metaWrite('presence', '1'))
    writer.write(metaWrite('presence', '2'))
    writer.writeSheddable(metaWrite('letter', '2'))
    writer.write(metaWrite('presence', '3'))
    expect(shed).toBe(1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(writer.waitMs()).toBeGreaterThanOrEqual(250)
    other.exec('COMMIT')
    await writer.flushed()
    expect(writer.waitMs()).toBe(0)
    expect([getMeta(db, 'letter'), getMeta(db, 'presence')]).toEqual(['1', '3'])
  })

  it('holds what comes past its bound while the disk hangs, in order, a keyed write taking the place of the one of its key still waiting', async () => {
    const { db, writer } = open({ busyTimeoutMs: 20, retryMs: 50, maxInFlight: 2 })
    const other = new Sqlite(db.name)
    closers.push(() => other.close())
    other.exec('BEGIN IMMEDIATE')
    const row = (key: string, value: string) => metaWrite(key, value)
    writer.write(row('log', 'in flight 1'))
    writer.write(row('log', 'in flight 2'))
    // Past the bound: these wait on this side, in order.
    writer.writeLatest('ack/a', row('a', 'first'))
    writer.write(row('position', 'after a'))
    for (let i = 1; i <= 10_000; i++) writer.writeLatest('ack/a', row('a', `newer ${i}`))
    writer.writeLatest('ack/b', row('b', 'only'))
    // Two in the thread's hands, and one each for a, the position and b: not ten thousand.
    expect(writer.waiting()).toBe(5)
    const flushed = writer.flushed()
    other.exec('COMMIT')
    await flushed
    expect(writer.waiting()).toBe(0)
    expect([getMeta(db, 'log'), getMeta(db, 'a'), getMeta(db, 'position'), getMeta(db, 'b')]).toEqual(['in flight 2', 'newer 10000', 'after a', 'only'])
    // The newest of `a` took the first one's place: committed before the position that followed it.
    const order = db.prepare("SELECT key FROM meta WHERE key IN ('a', 'position', 'b') ORDER BY rowid").all()
    expect(order).toEqual([{ key: 'a' }, { key: 'position' }, { key: 'b' }])
  })

  it('ends every wait, and saves nothing more quietly, when its thread is gone', async () => {
    const dir = tempDir()
    const writer = new StateWriter(join(dir, 'no', 'such', 'dir', 'gateway.sqlite'), quietLog)
    writer.write(metaWrite('position', '1'))
    // The thread could not open the file and ended: a wait for its writes must not hang.
    await writer.flushed()
    writer.write(metaWrite('position', '2'))
    await writer.flushed()
    expect(await writer.close()).toBe(true)
  })
})
