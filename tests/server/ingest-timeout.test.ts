/**
 * A batch whose statement is cancelled at the statement timeout (SQLSTATE 57014) is stored in
 * smaller parts, every event exactly once and none kept as a dead letter: it failed the same
 * way at every resend before, and its gateway sent it again forever. On PostgreSQL (with
 * TEST_DATABASE_URL) against a real statement timeout; PGlite has none (it accepts
 * `SET statement_timeout` and ignores it), so there, and on PostgreSQL too, the cancellation
 * is played by a wrapper that answers 57014 for statements it deems too large.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database, Queryable } from '../../server/db/database.js'
import { openPostgres } from '../../server/db/postgres.js'
import { TIMEOUTS_SPLIT_PER_REQUEST } from '../../server/ingest/statement-timeouts.js'
import type { GatewayEvent } from '../../protocol/index.js'
import { createTestDatabase, databaseBackends, testDatabaseUrl } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

/** `perDevice` events of each device, every tenth a press, received in the last minute. */
function eventsOf (devices: string[], perDevice: number, seqFrom = 1): GatewayEvent[] {
  const base = Date.now() - 60_000
  return devices.flatMap((deviceId, d) => Array.from({ length: perDevice }, (_, i) =>
    gatewayEvent(deviceId, { seq: seqFrom + i, type: i % 10 === 0 ? 'press' : 'heartbeat', battery: 90 }, base + i * 5 + d)))
}

/** How many times each of these events is stored, and how many dead letters there are. */
async function storage (db: Queryable, events: GatewayEvent[]): Promise<{ copies: number[], deadLetters: number }> {
  const rows = await db.query<{ event_id: string, n: number }>(
    'SELECT event_id, count(*)::int AS n FROM events WHERE event_id = ANY($1::text[]) GROUP BY event_id', [events.map((e) => e.eventId)])
  const counted = new Map(rows.map((r) => [r.event_id, Number(r.n)]))
  const [{ n }] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters') as [{ n: number }]
  return { copies: events.map((e) => counted.get(e.eventId) ?? 0), deadLetters: Number(n) }
}

const cancelled = () => Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })

/**
 * The database, its statements storing a batch cancelled as a statement timeout would cancel
 * them when `tooLarge` says so of their events (before they are sent: nothing of them stored).
 */
function withPlayedTimeouts (db: Database, tooLarge: (eventIds: string[]) => boolean): Database {
  const played = (q: Queryable): Queryable['query'] => async <Row>(sql: string, params?: unknown[]) => {
    if (sql.includes('INSERT INTO event_ids') && tooLarge((JSON.parse(params![0] as string) as Array<{ event_id: string }>).map((e) => e.event_id))) throw cancelled()
    return q.query<Row>(sql, params)
  }
  const wrapped = Object.create(db) as Database
  wrapped.query = played(db)
  wrapped.transaction = (work, options) => db.transaction((tx) => work({ query: played(tx) }), options)
  return wrapped
}

describe.each(databaseBackends.filter((b) => !b.timescale))('a batch cancelled at the statement timeout (played) on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let tooLarge: (eventIds: string[]) => boolean = () => false
  const devices = ['btn-played-1', 'btn-played-2', 'btn-played-3', 'btn-played-4']

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(withPlayedTimeouts(opened.db, (ids) => tooLarge(ids)))
    for (const id of devices) await fx.provision(id)
    await fx.provision('kiosk-played', { kind: 'kiosk' })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('stores a batch too large for one statement in halves, each event once, its presses coalesced as in one batch', async () => {
    const events = eventsOf(devices.slice(0, 2), 40)
    // 80 events: cancelled whole and in halves; stored in quarters.
    tooLarge = (ids) => ids.length > 25
    const results = await fx.ingest({ events, sentAt: Date.now() })
    tooLarge = () => false
    expect(results.map((r) => r.status)).toEqual(events.map(() => 'stored'))
    expect(await storage(fx.db, events)).toEqual({ copies: events.map(() => 1), deadLetters: 0 })
    for (const deviceId of devices.slice(0, 2)) {
      const ids = new Set(results.filter((r, i) => events[i]!.deviceId === deviceId && r.alertId).map((r) => r.alertId))
      expect(ids.size).toBe(1)
      expect((await fx.call('GET', `/v1/alerts/${[...ids][0]}`)).body).toMatchObject({ state: 'open', pressCount: 4 })
    }
    // Resent (the gateway gave up waiting meanwhile): duplicates, stored once.
    expect((await fx.ingest({ events, sentAt: Date.now() })).map((r) => r.status)).toEqual(events.map(() => 'duplicate'))
    expect((await storage(fx.db, events)).copies).toEqual(events.map(() => 1))
  })

  it('stores a batch that is a transaction (a kiosk report in it) in halves too', async () => {
    const events = [...eventsOf([devices[2]!], 30), gatewayEvent('kiosk-played', { seq: 1, type: 'report', report: { category: 'noise', text: 'split' } }, Date.now())]
    tooLarge = (ids) => ids.length > 16
    const results = await fx.ingest({ events, sentAt: Date.now() })
    tooLarge = () => false
    expect(results.map((r) => r.status)).toEqual(events.map(() => 'stored'))
    expect(results.at(-1)!.ticketId).toEqual(expect.any(String))
    expect(await storage(fx.db, events)).toEqual({ copies: events.map(() => 1), deadLetters: 0 })
  })

  it('never keeps an event whose statements keep being cancelled as a dead letter: the request fails after a bounded number of tries, the resend stores the rest, each once', async () => {
    const events = eventsOf([devices[3]!], 64)
    const stuck = events[50]!.eventId
    let tries = 0
    tooLarge = (ids) => { tries++; return ids.includes(stuck) }
    await expect(fx.ingest({ events, sentAt: Date.now() })).rejects.toThrow(/500/)
    // 64 events, the stuck one at 50: cancelled whole; [0, 32) stored; [32, 64) cancelled;
    // [32, 48) stored; [48, 64) cancelled; [48, 56) cancelled, one more than a request splits
    // after: it fails, rather than going on down to the event alone.
    expect(tries).toBe((TIMEOUTS_SPLIT_PER_REQUEST + 1) + 2)
    // Counted, by what followed: an operator sees statements outlasting the timeout.
    const metrics = (await fx.app.inject({ url: '/metrics' })).body
    const cancelledThen = (then: string) => Number(new RegExp(`^sos_ingest_statements_cancelled_total\\{then="${then}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0)
    expect(cancelledThen('failed')).toBe(1)
    expect(cancelledThen('split')).toBeGreaterThanOrEqual(TIMEOUTS_SPLIT_PER_REQUEST)
    const before = await storage(fx.db, events)
    expect(before).toEqual({ copies: events.map((_, i) => i < 48 ? 1 : 0), deadLetters: 0 })
    tooLarge = () => false
    const results = await fx.ingest({ events, sentAt: Date.now() })
    expect(results.map((r) => r.status)).toEqual(before.copies.map((n) => n === 1 ? 'duplicate' : 'stored'))
    expect(await storage(fx.db, events)).toEqual({ copies: events.map(() => 1), deadLetters: 0 })
  })
})

describe.runIf(testDatabaseUrl)('a batch cancelled at a real statement timeout (PostgreSQL)', () => {
  /** Short, so that the test is quick; the batches are slowed down in proportion to their events. */
  const STATEMENT_TIMEOUT_MS = 2_000
  let fx: Fixture
  let drop: () => Promise<void>
  let url: string
  const devices = Array.from({ length: 10 }, (_, i) => `btn-slow-${i}`)

  beforeAll(async () => {
    const created = await createTestDatabase()
    url = created.url
    const db = await openPostgres(url, { statementTimeoutMs: STATEMENT_TIMEOUT_MS })
    drop = async () => { await db.close(); await created.drop() }
    fx = await buildFixture(db)
    for (const id of devices) await fx.provision(id)
    await fx.provision('kiosk-slow', { kind: 'kiosk' })
    // Storing events costs 1 ms each here (a database slowed down: a disk failing, a backup
    // running): 5 000 take 5 s, more than the statement timeout; 1 250, 1.25 s, pass.
    await fx.db.query(`CREATE FUNCTION slow_events () RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_sleep(0.001 * (SELECT count(*) FROM inserted WHERE device_id LIKE 'btn-slow-%'));
        RETURN NULL;
      END $$`)
    await fx.db.query('CREATE TRIGGER slow_events AFTER INSERT ON events REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION slow_events()')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await drop?.()
  })

  it('stores 5 000 events whose statement outlasts the timeout, in parts, each event once', async () => {
    const events = eventsOf(devices, 500)
    const results = await fx.ingest({ events, sentAt: Date.now() })
    expect(results.filter((r) => r.status !== 'stored')).toEqual([])
    expect(await storage(fx.db, events)).toEqual({ copies: events.map(() => 1), deadLetters: 0 })
    // Every device's 50 presses in one alert, as from one statement.
    const alerts = await fx.db.query<{ device_id: string, press_count: number }>(
      "SELECT device_id, press_count FROM alerts WHERE device_id LIKE 'btn-slow-%' ORDER BY device_id")
    expect(alerts.map((a) => [a.device_id, Number(a.press_count)])).toEqual(devices.map((id) => [id, 50]))
  }, 120_000)

  it('stores a batch that is a transaction (a kiosk report in it) in parts too', async () => {
    const events = [...eventsOf(devices.slice(0, 4), 500, 1_000), gatewayEvent('kiosk-slow', { seq: 1, type: 'report', report: { category: 'noise', text: 'slow' } }, Date.now())]
    const results = await fx.ingest({ events, sentAt: Date.now() })
    expect(results.filter((r) => r.status !== 'stored')).toEqual([])
    expect(await storage(fx.db, events)).toEqual({ copies: events.map(() => 1), deadLetters: 0 })
  }, 120_000)

  it('gives up after a bounded number of timeouts when splitting does not help (a device locked elsewhere), and the resend stores the rest once', async () => {
    await fx.provision('btn-held')
    const events = [...eventsOf(['btn-slow-0'], 100, 10_000), ...eventsOf(['btn-held'], 100)]
    const holder = await openPostgres(url)
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    let locked!: () => void
    const isLocked = new Promise<void>((resolve) => { locked = resolve })
    const holding = holder.transaction(async (tx) => {
      await tx.query("SELECT 1 FROM devices WHERE id = 'btn-held' FOR UPDATE")
      locked()
      await released
    })
    try {
      await isLocked
      const started = Date.now()
      await expect(fx.ingest({ events, sentAt: Date.now() })).rejects.toThrow(/500/)
      // The whole, the held device's half, its quarter, its eighth: then it stops.
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual((TIMEOUTS_SPLIT_PER_REQUEST + 1) * STATEMENT_TIMEOUT_MS - 100)
      expect(elapsed).toBeLessThan((TIMEOUTS_SPLIT_PER_REQUEST + 3) * STATEMENT_TIMEOUT_MS)
    } finally {
      release()
      await holding
      await holder.close()
    }
    const before = await storage(fx.db, events)
    expect(before).toEqual({ copies: events.map((e) => e.deviceId === 'btn-held' ? 0 : 1), deadLetters: 0 })
    const results = await fx.ingest({ events, sentAt: Date.now() })
    expect(results.map((r) => r.status)).toEqual(events.map((e) => e.deviceId === 'btn-held' ? 'stored' : 'duplicate'))
    expect(await storage(fx.db, events)).toEqual({ copies: events.map(() => 1), deadLetters: 0 })
  }, 120_000)
})
