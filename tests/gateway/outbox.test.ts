/**
 * The outbox on its own (its worker thread, its file): what survives a reopen, what a remove
 * forgets, group commit, and the upgrade from the outbox table of the state database.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Outbox, adoptLegacyOutbox } from '../../gateway/outbox/outbox.js'
import { openStateDb } from '../../gateway/state-db.js'
import { eventIdOf, type GatewayEvent } from '../../protocol/index.js'

function event (deviceId: string, seq: number, type: GatewayEvent['event']['type'] = 'press'): GatewayEvent {
  return { eventId: eventIdOf(deviceId, seq, 'b1'), deviceId, gatewayId: 'gw-test', receivedAt: 1_700_000_000_000 + seq, skewed: false, event: { seq, boot: 'b1', type } }
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
    await outbox.remove(head.map((e) => e.id))
    await outbox.close()

    outbox = await Outbox.open(dir)
    expect(outbox.depth()).toBe(3)
    expect(outbox.oldestReceivedAt()).toBe(event('btn-1', 3).receivedAt)
    const rest = await outbox.peek('alarm', 10)
    expect(rest.map((e) => [e.deviceId, e.type, e.seq])).toEqual([['btn-1', 'press', 3], ['btn-1', 'press', 4], ['btn-1', 'press', 5]])
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
    expect(await adoptLegacyOutbox(outbox, db)).toBe(3)
    expect(await adoptLegacyOutbox(outbox, db)).toBe(0)
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'outbox'").get()).toEqual({ n: 0 })
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
})
