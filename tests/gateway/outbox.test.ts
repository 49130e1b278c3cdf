/**
 * The outbox on its own (its worker thread, its file): what survives a reopen, what a remove
 * forgets, group commit, and the upgrade from the outbox table of the state database.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Outbox, adoptLegacyOutbox, type Lane } from '../../gateway/outbox/outbox.js'
import { OUTBOX_FILE, OutboxStore } from '../../gateway/outbox/store.js'
import { openStateDb } from '../../gateway/state-db.js'
import { StateWriter } from '../../gateway/state-writer.js'
import { quietLog } from '../helpers/system.js'
import { eventIdOf, type GatewayEvent } from '../../protocol/index.js'

function event (deviceId: string, seq: number, type: GatewayEvent['event']['type'] = 'press', boot = 'b1'): GatewayEvent {
  return { eventId: eventIdOf(deviceId, seq, boot), deviceId, gatewayId: 'gw-test', receivedAt: 1_700_000_000_000 + seq, skewed: false, event: { seq, boot, type } }
}

describe('outbox', () => {
  let dir: string
  let outbox: Outbox | undefined

  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'sos-outbox-')) })
  afterEach(async () => {
    await outbox?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('keeps what it acknowledged across a reopen, forgets only what was removed, in arrival order', async () => {
    outbox = await Outbox.open(dir)
    // One turn of the event loop: one transaction for all of them.
    const results = await Promise.all([1, 2, 3, 4, 5].map((seq) => outbox!.append(event('btn-1', seq))))
    expect(results).toEqual(['stored', 'stored', 'stored', 'stored', 'stored'])
    // A QoS 1 redelivery of a waiting event is the same event.
    expect(await outbox.append(event('btn-1', 3))).toBe('stored')
    expect(outbox.depth()).toBe(5)
    const head = await outbox.peek('alarm', 2)
    expect(head.map((e) => e.seq)).toEqual([1, 2])
    expect(JSON.parse(head[0]!.body)).toEqual(event('btn-1', 1))
    await outbox.remove('alarm', head.map((e) => e.id))
    await outbox.close()

    outbox = await Outbox.open(dir)
    expect(outbox.depth()).toBe(3)
    expect(outbox.oldestReceivedAt()).toBe(event('btn-1', 3).receivedAt)
    const rest = await outbox.peek('alarm', 10)
    expect(rest.map((e) => [e.deviceId, e.type, e.seq])).toEqual([['btn-1', 'press', 3], ['btn-1', 'press', 4], ['btn-1', 'press', 5]])
  })

  it('keeps an event whose id a different event still waiting holds (a device repeating old ids while the server is away), once', async () => {
    outbox = await Outbox.open(dir)
    const at = (e: GatewayEvent, receivedAt: number, ts?: number): GatewayEvent => ({ ...e, receivedAt, event: { ...e.event, ...(ts === undefined ? {} : { ts }) } })
    const oldHeartbeat = at(event('btn-9', 1, 'heartbeat'), 1_000)
    const oldPress = at(event('btn-9', 2, 'press'), 1_001, 500)
    expect(await Promise.all([oldHeartbeat, oldPress].map((e) => outbox!.append(e)))).toEqual(['stored', 'stored'])
    // The board resets without a new boot and counts from 1 again, its clock from 0.
    const press = at(event('btn-9', 1, 'press'), 60_000)
    const pressAgain = at(event('btn-9', 2, 'press'), 60_001, 20)
    expect(await outbox.append(press)).toBe('stored')
    expect(await outbox.append(pressAgain)).toBe('stored')
    // Redeliveries of the new presses (received again later) are copies: kept once.
    expect(await outbox.append(at(press, 61_000))).toBe('stored')
    expect(await outbox.append(at(pressAgain, 61_001, 20))).toBe('stored')
    // Same type, no device clock, within a day: nothing tells it from a copy.
    expect(await outbox.append(at(oldHeartbeat, 62_000))).toBe('stored')
    expect(outbox.depth()).toBe(4)
    await outbox.close()

    outbox = await Outbox.open(dir)
    const alarms = await outbox.peek('alarm', 10)
    // The server sees each under the device's id and tells them apart by the same rule.
    expect(alarms.map((e) => JSON.parse(e.body))).toEqual([oldPress, press, pressAgain])
    // Read from disk, each entry names the event's own id (the one the device and server know).
    expect(alarms.map((e) => e.eventId)).toEqual([oldPress.eventId, press.eventId, pressAgain.eventId])
    const routine = await outbox.peek('routine', 10)
    expect(routine.map((e) => JSON.parse(e.body))).toEqual([oldHeartbeat])

    // The old heartbeat reaches the server first and goes; the press is redelivered after: still
    // the copy of the press kept under the reused id, not a new event under the freed one.
    await outbox.remove('routine', routine.map((e) => e.id))
    expect(await outbox.append(at(press, 70_000))).toBe('stored')
    expect(outbox.depth()).toBe(3)
    await outbox.close()
    outbox = await Outbox.open(dir)
    expect(await outbox.append(at(press, 71_000))).toBe('stored')
    expect(await outbox.append(at(pressAgain, 71_001, 20))).toBe('stored')
    expect(outbox.depth(), 'after a restart too').toBe(3)
  })

  it('keeps alarms and routine events in separate lanes, each in arrival order', async () => {
    outbox = await Outbox.open(dir)
    const arrivals = [event('btn-4', 1, 'heartbeat'), event('btn-4', 2, 'press'), event('btn-5', 1, 'test'), event('btn-4', 3, 'cancel'),
      event('btn-5', 2, 'battery_low'), event('kiosk-2', 1, 'report'), event('btn-5', 3, 'tamper')]
    await Promise.all(arrivals.map((e) => outbox!.append(e)))
    const lane = async (name: 'alarm' | 'routine') => (await outbox!.peek(name, 10)).map((e) => `${e.deviceId}/${e.seq}/${e.type}`)
    expect(await lane('alarm')).toEqual(['btn-4/2/press', 'btn-4/3/cancel', 'kiosk-2/1/report', 'btn-5/3/tamper'])
    expect(await lane('routine')).toEqual(['btn-4/1/heartbeat', 'btn-5/1/test', 'btn-5/2/battery_low'])
  })

  it('moves events waiting in the old outbox table of the state database, in order, once', async () => {
    const db = openStateDb(dir)
    // The table as versions before 0.3 created it.
    db.exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL,
      type TEXT NOT NULL, body TEXT NOT NULL, received_at INTEGER NOT NULL)`)
    const insert = db.prepare('INSERT INTO outbox (event_id, device_id, type, body, received_at) VALUES (?, ?, ?, ?, ?)')
    const waiting = [event('btn-2', 7), event('kiosk-1', 1, 'report'), event('btn-2', 8, 'cancel')]
    for (const e of waiting) insert.run(e.eventId, e.deviceId, e.event.type, JSON.stringify(e), e.receivedAt)

    outbox = await Outbox.open(dir)
    const writer = new StateWriter(db.name, quietLog)
    expect(await adoptLegacyOutbox(outbox, db, writer)).toBe(3)
    await writer.flushed()
    expect(await adoptLegacyOutbox(outbox, db, writer)).toBe(0)
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'outbox'").get()).toEqual({ n: 0 })
    await writer.close()
    db.close()
    const moved = await outbox.peek('alarm', 10)
    expect(moved.map((e) => JSON.parse(e.body))).toEqual(waiting)
  })

  it('refuses to acknowledge once closed, rather than pretend', async () => {
    outbox = await Outbox.open(dir)
    await outbox.close()
    await expect(outbox.append(event('btn-3', 1))).rejects.toThrow(/closed/)
    outbox = undefined
  })

  it('answers every write and read handed over while it closes, rather than leave them waiting', async () => {
    outbox = await Outbox.open(dir)
    await outbox.append(event('btn-4', 1))
    const closing = outbox.close()
    // A last will or a forwarder round landing during shutdown.
    const late = [outbox.append(event('btn-4', 2)), outbox.peek('routine', 10), outbox.remove('alarm', [1])]
    const settled = await Promise.race([Promise.allSettled(late), new Promise((resolve) => setTimeout(() => resolve('hung'), 5000))])
    await closing
    expect(settled).not.toBe('hung')
    expect((settled as PromiseSettledResult<unknown>[])[0]!.status).toBe('rejected')
    outbox = undefined
  })
  it('never hands back what a removal took while the read waited for the disk, nor keeps it in memory', async () => {
    outbox = await Outbox.open(dir)
    await Promise.all([1, 2, 3].map((seq) => outbox!.append(event('btn-1', seq))))
    const [first] = await outbox.peek('alarm', 1)
    await outbox.close()
    // Reopened, the lane is known only on disk; the forwarder reads it while a request it sent
    // before is confirmed.
    outbox = await Outbox.open(dir)
    const [read] = await Promise.all([outbox.peek('alarm', 10), outbox.remove('alarm', [first!.id])])
    expect(read.map((e) => e.seq)).toEqual([2, 3])
    expect(outbox.depth()).toBe(2)
    expect((await outbox.peek('alarm', 10)).map((e) => e.seq)).toEqual([2, 3])
  })

  it('reads the alarm lane past the devices in flight exactly as a filter of the lane would, however large their backlog', () => {
    // The store itself (what the worker runs), on disk: the cases the bounded look past the
    // head cannot answer alone, and the one it can.
    const store = new OutboxStore(dir, 1_000_000)
    let seq = 0
    const add = (deviceId: string, n: number) => store.append(Array.from({ length: n }, () => {
      seq++
      return { eventId: `${deviceId}/${seq}`, deviceId, type: 'press' as const, seq, receivedAt: seq, body: '{}' }
    }))
    const lane = () => store.peek('alarm', 1_000_000)
    const expected = (limit: number, skip: string[]) => lane().filter((e) => !skip.includes(e.deviceId)).slice(0, limit)
    const check = (limit: number, skip: string[]) => expect(store.peek('alarm', limit, skip)).toEqual(expected(limit, skip))
    try {
      add('btn-flood', 3000)
      for (let d = 0; d < 3; d++) add(`btn-few-${d}`, 5)
      check(500, ['btn-flood']) // fewer devices than the limit behind the flood
      for (let d = 0; d < 600; d++) add(`btn-many-${String(d).padStart(3, '0')}`, 1)
      check(500, ['btn-flood', 'btn-few-0', 'btn-few-1', 'btn-few-2']) // more devices than the limit, one alarm each
      for (let d = 0; d < 600; d++) add(`btn-many-${String(d).padStart(3, '0')}`, 1)
      add('btn-flood-2', 700)
      check(500, ['btn-flood']) // more devices than the limit: the read is bounded by their first alarms
      check(500, ['btn-flood', 'btn-many-000', 'btn-few-1'])
      check(7, ['btn-flood', 'btn-flood-2'])
      check(500, []) // nothing skipped: the head itself
      check(100, ['btn-nobody']) // the head answers when the devices skipped are not there
    } finally {
      store.close()
    }
  })

  it('hands the forwarder each lane exactly as the disk holds it, through appends, redeliveries, removals, evictions and shedding', async () => {
    const devices = ['btn-a', 'btn-b', 'kiosk-c']
    // Small, so that heartbeats are evicted and routine events shed (store.ts).
    outbox = await Outbox.open(dir, 12)
    // A second connection reads the file itself: the truth the lanes kept in memory must match.
    const disk = new Sqlite(join(dir, OUTBOX_FILE), { readonly: true })
    const onDisk = disk.prepare(`SELECT id, event_id AS eventId, device_id AS deviceId, type, seq, received_at AS receivedAt, body
      FROM outbox WHERE alarm = ? ORDER BY id LIMIT ?`)
    const types = ['press', 'test', 'heartbeat', 'cancel'] as const
    const operation = fc.oneof(
      fc.record({ op: fc.constant('append' as const), events: fc.array(fc.record({ device: fc.nat(2), type: fc.nat(3), again: fc.boolean() }), { minLength: 1, maxLength: 6 }) }),
      // The alarm lane skips the devices that have a request on its way.
      fc.record({ op: fc.constant('peek' as const), alarm: fc.boolean(), limit: fc.integer({ min: 1, max: 8 }), skip: fc.subarray(devices) }),
      fc.record({ op: fc.constant('remove' as const), alarm: fc.boolean(), keep: fc.array(fc.boolean(), { maxLength: 8 }) }),
      // A read and a removal on their way at once (a request confirmed while the lane is read).
      fc.record({ op: fc.constant('peekWhileRemoving' as const), alarm: fc.boolean(), limit: fc.integer({ min: 1, max: 8 }) })
    )
    let run = 0
    try {
      await fc.assert(fc.asyncProperty(fc.array(operation, { maxLength: 30 }), async (operations) => {
        const boot = `r${run++}`
        const sent: GatewayEvent[] = []
        const seqs = new Map<string, number>()
        const lastPeek: Record<Lane, number[]> = { alarm: [], routine: [] }
        for (const o of operations) {
          if (o.op === 'append') {
            await Promise.all(o.events.map((e) => {
              // A QoS 1 redelivery of an event already sent, or a new one.
              const again = e.again && sent.length > 0 ? sent[sent.length - 1]! : undefined
              const deviceId = devices[e.device]!
              const seq = (seqs.get(deviceId) ?? 0) + 1
              if (!again) seqs.set(deviceId, seq)
              const next = again ?? event(deviceId, seq, types[e.type], boot)
              sent.push(next)
              return outbox!.append(next)
            }))
          } else if (o.op === 'peek') {
            const lane: Lane = o.alarm ? 'alarm' : 'routine'
            const head = await outbox!.peek(lane, o.limit, new Set(o.skip))
            expect(head).toEqual((onDisk.all(o.alarm ? 1 : 0, 1000) as GatewayEvent[]).filter((e) => !o.skip.includes(e.deviceId)).slice(0, o.limit))
            lastPeek[lane] = head.map((e) => e.id)
          } else if (o.op === 'peekWhileRemoving') {
            const lane: Lane = o.alarm ? 'alarm' : 'routine'
            const removing = lastPeek[lane]
            const before = onDisk.all(o.alarm ? 1 : 0, o.limit) as Array<{ id: number }>
            const [head] = await Promise.all([outbox!.peek(lane, o.limit), outbox!.remove(lane, removing)])
            // Answered from memory, the read came first; from disk, after the removal was asked
            // for, so it must not hand back what it removed. (The next peeks check that memory
            // did not keep it either.)
            const answers = [before, before.filter((e) => !removing.includes(e.id))]
            expect(answers, 'a read answered after a removal handed back what it removed').toContainEqual(head)
            lastPeek[lane] = []
          } else {
            const lane: Lane = o.alarm ? 'alarm' : 'routine'
            await outbox!.remove(lane, lastPeek[lane].filter((_, i) => !o.keep[i]))
            lastPeek[lane] = []
          }
        }
        expect(outbox!.depth()).toBe((disk.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n)
      }), { numRuns: 60 })
    } finally {
      disk.close()
    }
  })
})
