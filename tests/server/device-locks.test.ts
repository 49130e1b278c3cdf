/**
 * Batches stored at once never deadlock on the devices they share. Each batch updates its
 * devices' health (last seen, battery) and a batch with presence changes writes more devices
 * afterwards; were the rows locked in whatever order a plan meets them, an alarm request and a
 * routine batch (or a presence batch) holding the same two devices in opposite orders would
 * deadlock, and PostgreSQL would only notice after `deadlock_timeout` (1 s): a press a second
 * late. Every batch locks all its devices in its first statement, in id order, whatever plan
 * the fleet's size gives: these tests force both (into the primary key in the batch's order,
 * and a scan of the table in its own order) and hold rows from other sessions to line the
 * batches up. Alerts are taken in device order too, by batches and by the escalator (which
 * locks the due ones without their devices). PostgreSQL only (PGlite has one connection, so
 * nothing runs at once there).
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../../server/db/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import type { Queryable } from '../../server/db/database.js'
import { storeEvents } from '../../server/ingest/events.js'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent } from './fixture.js'

/** The batches' connections say who they are, so only their lock waits are counted. */
const BATCH_APP = 'device-locks-batch'

const PLANS = {
  // What a city's fleet gets: the batch's rows walked into the devices' primary key.
  'into the primary key': '-c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off',
  // What a fleet of up to some ten thousand devices gets: the table scanned in its own order.
  'a scan of the table': '-c enable_nestloop=off -c enable_mergejoin=off -c enable_indexscan=off -c enable_bitmapscan=off'
}
type Plan = keyof typeof PLANS

describe.skipIf(!testDatabaseUrl)('device and alert rows under concurrent batches (PostgreSQL)', () => {
  let drop: () => Promise<void>
  let url: string
  const clients: pg.Client[] = []

  const connect = async (plan?: Plan): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url, ...(plan ? { application_name: BATCH_APP, options: PLANS[plan] } : {}) })
    await client.connect()
    clients.push(client)
    return client
  }
  const queryable = (client: pg.Client): Queryable => ({ query: async (sql, params) => (await client.query(sql, params)).rows })
  // Asked from a connection of its own: inside a holder's transaction the activity view stays
  // the snapshot it first read.
  let watcher: pg.Client
  const waitingForLocks = async (n: number): Promise<number> => {
    const waiting = async () => Number((await watcher.query(
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'", [BATCH_APP])).rows[0].count)
    for (let i = 0; i < 300 && await waiting() < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    return waiting()
  }
  const hold = async (deviceId: string): Promise<pg.Client> => {
    const holder = await connect()
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE', [deviceId])
    return holder
  }

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    const db = await openPostgres(url)
    await migrate(db)
    // `scan-y` before `scan-x` in the table; a thousand more so the planner scans it as a fleet's.
    await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash) VALUES
      ('lock-a', 'button', 'a', 'z1', 'x'), ('lock-b', 'button', 'b', 'z1', 'x'), ('lock-c', 'button', 'c', 'z1', 'x'),
      ('scan-y', 'button', 'y', 'z1', 'x'), ('scan-x', 'button', 'x', 'z1', 'x'),
      ('esc-b', 'button', 'b', 'z1', 'x'), ('esc-a', 'button', 'a', 'z1', 'x'),
      ('raise-b', 'button', 'b', 'z1', 'x'), ('raise-a', 'button', 'a', 'z1', 'x')`)
    await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash)
      SELECT 'fleet-' || lpad(i::text, 5, '0'), 'button', 'f', 'z1', 'x' FROM generate_series(1, 1000) i`)
    await db.query('ANALYZE devices')
    await db.close()
    watcher = await connect()
  })

  afterAll(async () => {
    for (const client of clients) await client.end().catch(() => {})
    await drop?.()
  })

  it('locks the devices of every batch in one order, so batches listing them in opposite orders both go through', async () => {
    // Someone else holds each row, so both batches queue on their first row; released together,
    // a batch that locked in its own listing order would now wait for the other's first row.
    const holdA = await hold('lock-a')
    const holdB = await hold('lock-b')
    const batchClients = [await connect('into the primary key'), await connect('into the primary key')]
    const t = Date.now()
    const stores = [['lock-a', 'lock-b'], ['lock-b', 'lock-a']].map((order, i) => {
      const events = order.map((id, j) => gatewayEvent(id, { seq: 10 * i + j + 1, type: 'test' }, t + j))
      return storeEvents(queryable(batchClients[i]!), events).then(() => 'stored', (err: { code?: string }) => err.code ?? 'failed')
    })
    // Both batches are waiting for a row before the holders let go.
    expect(await waitingForLocks(2)).toBe(2)
    await Promise.all([holdA.query('COMMIT'), holdB.query('COMMIT')])

    // 40P01 (deadlock detected) for one of them if the rows were locked in listing order.
    expect(await Promise.all(stores)).toEqual(['stored', 'stored'])
  })

  it('holds none of a batch\'s devices while it waits for the first in id order, whatever order the table has them in', async () => {
    const { rows: inTable } = await watcher.query("SELECT id FROM devices WHERE id IN ('scan-x', 'scan-y') ORDER BY ctid")
    expect(inTable.map((r) => r.id)).toEqual(['scan-y', 'scan-x'])
    const holdX = await hold('scan-x')
    const client = await connect('a scan of the table')
    const t = Date.now()
    const stored = storeEvents(queryable(client), [gatewayEvent('scan-x', { seq: 1, type: 'test' }, t), gatewayEvent('scan-y', { seq: 2, type: 'test' }, t + 1)])
      .then(() => 'stored', (err: { code?: string }) => err.code ?? 'failed')
    expect(await waitingForLocks(1)).toBe(1)

    // Scanning the table, the batch would have locked scan-y on its way to scan-x; another
    // batch holding scan-x and wanting scan-y would then deadlock with it.
    const probe = await connect()
    await probe.query('BEGIN')
    const free = await probe.query("SELECT 1 FROM devices WHERE id = 'scan-y' FOR NO KEY UPDATE NOWAIT").then(() => true, (err: { code?: string }) => err.code)
    await probe.query('ROLLBACK')
    await holdX.query('COMMIT')
    expect(free).toBe(true)
    expect(await stored).toBe('stored')
  })

  it.each(Object.keys(PLANS).map((plan, i) => ({ plan: plan as Plan, seq: 100 * (i + 1) })))('locks every device a batch transaction writes in its first statement, so a presence change never deadlocks with an alarm batch ($plan)', async ({ plan, seq }) => {
    // A batch with presence changes is a transaction of several statements: its events lock
    // their devices, then each presence change writes its own device. Were those taken one by
    // one, this one (events of b; then c, then a going offline) would hold b and wait for a
    // while an alarm batch holding a waits for b: a deadlock, noticed after a second.
    const planned = new URL(url)
    planned.searchParams.set('application_name', BATCH_APP)
    planned.searchParams.set('options', PLANS[plan])
    const db = await openPostgres(planned.toString())
    const conflicts: string[] = []
    const watch = <T>(work: Promise<T>) => work.catch((err: { code?: string }) => { if (err.code) conflicts.push(err.code); throw err })
    const fx = await buildFixture({ ...db, query: (sql, params) => watch(db.query(sql, params)), transaction: (fn) => watch(db.transaction(fn)) })
    // The table in id order, as a fleet provisioned in order has it: a scan meets a, b, c.
    await watcher.query('CLUSTER devices USING devices_pkey')
    await watcher.query('ANALYZE devices')
    const holdC = await hold('lock-c')
    const t = Date.now()
    const withPresence = fx.ingest({
      events: [gatewayEvent('lock-b', { seq, type: 'test' }, t)],
      presence: [
        { deviceId: 'lock-c', gatewayId: 'gw-test', state: 'offline', at: t + 1, reason: 'will' },
        { deviceId: 'lock-a', gatewayId: 'gw-test', state: 'offline', at: t + 2, reason: 'will' }
      ]
    })
    let alarms: typeof withPresence | undefined
    try {
      // It waits for c, holding whatever it locked before.
      expect(await waitingForLocks(1)).toBe(1)
      alarms = fx.ingest({ events: [gatewayEvent('lock-a', { seq: seq + 1, type: 'press' }, t + 3), gatewayEvent('lock-b', { seq: seq + 2, type: 'press' }, t + 4)] })
      expect(await waitingForLocks(2)).toBe(2)
      await holdC.query('COMMIT')

      const [presenceResults, alarmResults] = await Promise.all([withPresence, alarms])
      expect(presenceResults.map((r) => r.status)).toEqual(['stored'])
      expect(alarmResults.map((r) => [r.status, r.alertState])).toEqual([['stored', 'open'], ['stored', 'open']])
      // Both went through the first time: no deadlock was detected (40P01) and run again.
      expect(conflicts).toEqual([])
      const { rows } = await watcher.query("SELECT device_id, kind, state FROM alerts WHERE device_id LIKE 'lock-%' ORDER BY device_id, kind")
      expect(rows).toEqual([
        { device_id: 'lock-a', kind: 'device_offline', state: 'open' }, { device_id: 'lock-a', kind: 'panic', state: 'open' },
        { device_id: 'lock-b', kind: 'panic', state: 'open' }, { device_id: 'lock-c', kind: 'device_offline', state: 'open' }
      ])
    } finally {
      // Lets the batches go (and settle) if an expectation failed before the commit above.
      await holdC.query('ROLLBACK')
      await Promise.allSettled([withPresence, alarms])
      await fx.app.close()
      await db.close()
    }
  })

  it('has the escalator take due alerts in device order, as batches take them, holding none while it waits for the first', async () => {
    // Two panic alerts nobody acknowledged, the later device's first in the table and in time.
    await watcher.query(`INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, last_press_at) VALUES
      ('alert-esc-b', 'esc-b', 'panic', 'open', 'z1', now() - interval '30 minutes', now()),
      ('alert-esc-a', 'esc-a', 'panic', 'open', 'z1', now() - interval '60 minutes', now())`)
    // A small table's plan walks the alerts' (device, kind) index, in device order by chance;
    // a scan (or the index by time) meets them in another.
    const planned = new URL(url)
    planned.searchParams.set('application_name', BATCH_APP)
    planned.searchParams.set('options', PLANS['a scan of the table'])
    const db = await openPostgres(planned.toString())
    const fx = await buildFixture(db)
    const holder = await connect()
    await holder.query('BEGIN')
    await holder.query("SELECT 1 FROM alerts WHERE id = 'alert-esc-a' FOR UPDATE")
    const escalated = fx.app.services.escalator.check()
    try {
      expect(await waitingForLocks(1)).toBe(1)
      // Taking them in the table's order, it would hold esc-b's alert now; a batch pressing a
      // then b again would hold a's and wait for b's: a deadlock.
      const probe = await connect()
      await probe.query('BEGIN')
      const free = await probe.query("SELECT 1 FROM alerts WHERE id = 'alert-esc-b' FOR UPDATE NOWAIT").then(() => true, (err: { code?: string }) => err.code)
      await probe.query('ROLLBACK')
      expect(free).toBe(true)
      await holder.query('COMMIT')
      expect(await escalated).toBe(2)
    } finally {
      await holder.query('ROLLBACK')
      await escalated
      await fx.app.close()
      await db.close()
    }
  })

  it('has a batch take the alerts its presses join in device order, holding none while it waits for the first', async () => {
    const t = Date.now()
    const pressesOf = (seq: number) => {
      const events = ['raise-b', 'raise-a'].map((id, i) => gatewayEvent(id, { seq, type: 'press' }, t + 10 * seq + i))
      return { events, causes: events.map((e) => ({ deviceId: e.deviceId, kind: 'panic' as const, atMs: e.receivedAt, seq, eventId: e.eventId, actor: `device:${e.deviceId}` })) }
    }
    const first = pressesOf(1)
    await storeEvents(queryable(watcher), first.events, { causes: first.causes })
    const { rows: alerts } = await watcher.query("SELECT id, device_id FROM alerts WHERE device_id LIKE 'raise-%' ORDER BY device_id")
    expect(alerts.map((a) => a.device_id)).toEqual(['raise-a', 'raise-b'])
    const holder = await connect()
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE', [alerts[0].id])
    const client = await connect('a scan of the table')
    // Pressed again, b listed first: both join their open alerts.
    const again = pressesOf(2)
    const stored = storeEvents(queryable(client), again.events, { causes: again.causes }).then(() => 'stored', (err: { code?: string }) => err.code ?? 'failed')
    try {
      expect(await waitingForLocks(1)).toBe(1)
      const probe = await connect()
      await probe.query('BEGIN')
      const free = await probe.query('SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE NOWAIT', [alerts[1].id]).then(() => true, (err: { code?: string }) => err.code)
      await probe.query('ROLLBACK')
      expect(free).toBe(true)
      await holder.query('COMMIT')
      expect(await stored).toBe('stored')
    } finally {
      await holder.query('ROLLBACK')
      await stored
    }
  })
})
