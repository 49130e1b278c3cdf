/**
 * Batches stored at once never deadlock on the rows they share. Each batch updates its devices'
 * health (last seen, battery), a batch with presence changes or cancels writes more devices and
 * alerts afterwards, and the escalator locks due alerts without their devices. Were rows locked
 * in whatever order a plan meets them, two of these holding the same two rows in opposite
 * orders would deadlock, and PostgreSQL would only notice after `deadlock_timeout` (1 s): a
 * press a second late. So every batch locks all its devices in its first statement, in id
 * order, whatever plan the fleet's size gives, and alerts are taken in device order by batches
 * and the escalator alike. These tests force the plans (into the primary key in the batch's
 * order, and a scan of the table in its own order), hold rows from other sessions to line the
 * lockers up, and probe with NOWAIT what a waiting locker already holds.
 * PostgreSQL only (PGlite has one connection, so nothing runs at once there).
 */
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../../server/db/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import type { Queryable } from '../../server/db/database.js'
import { storeEvents } from '../../server/ingest/events.js'
import type { AlertCause } from '../../server/ingest/raise-alert.js'
import type { GatewayEvent } from '../../protocol/index.js'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

/** The lockers' connections say who they are, so only their lock waits are counted. */
const LOCKER_APP = 'device-locks-locker'

const PLANS = {
  // What a city's fleet gets: the batch's rows walked into the devices' primary key.
  'into the primary key': '-c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off',
  // What a fleet of up to some ten thousand devices gets: the table scanned in its own order.
  'a scan of the table': '-c enable_nestloop=off -c enable_mergejoin=off -c enable_indexscan=off -c enable_bitmapscan=off'
}
type Plan = keyof typeof PLANS

const pressCauses = (events: GatewayEvent[]): AlertCause[] =>
  events.map((e) => ({ deviceId: e.deviceId, kind: 'panic', atMs: e.receivedAt, seq: e.event.seq, eventId: e.eventId, actor: `device:${e.deviceId}` }))

describe.skipIf(!testDatabaseUrl)('device and alert rows under concurrent batches (PostgreSQL)', () => {
  let drop: () => Promise<void>
  let url: string
  const clients: pg.Client[] = []
  /** Sessions holding a row for the test; let go after each test, whatever happened. */
  const holders: pg.Client[] = []
  /** Apps of the tests, closed after each. */
  const fixtures: Array<{ fx: Fixture, close: () => Promise<void> }> = []

  const connect = async (plan?: Plan): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url, ...(plan ? { application_name: LOCKER_APP, options: PLANS[plan] } : {}) })
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
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'", [LOCKER_APP])).rows[0].count)
    // Up to 15 s on a loaded machine; it returns as soon as they wait.
    for (let i = 0; i < 1500 && await waiting() < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    return waiting()
  }
  const hold = async (table: 'devices' | 'alerts', id: string): Promise<pg.Client> => {
    const holder = await connect()
    await holder.query('BEGIN')
    holders.push(holder)
    await holder.query(`SELECT 1 FROM ${table} WHERE id = $1 FOR UPDATE`, [id])
    return holder
  }
  /** True when nobody holds the row now; else the error code (55P03: someone does). */
  const isFree = async (table: 'devices' | 'alerts', id: string): Promise<true | string> => {
    const probe = await connect()
    await probe.query('BEGIN')
    try {
      return await probe.query(`SELECT 1 FROM ${table} WHERE id = $1 FOR UPDATE NOWAIT`, [id]).then(() => true as const, (err: { code?: string }) => err.code ?? 'failed')
    } finally {
      await probe.query('ROLLBACK')
    }
  }
  /** The server on connections that use `plan` and count their lock waits as lockers'. */
  const serverWith = async (plan: Plan): Promise<{ fx: Fixture, conflicts: string[] }> => {
    const planned = new URL(url)
    planned.searchParams.set('application_name', LOCKER_APP)
    planned.searchParams.set('options', PLANS[plan])
    const db = await openPostgres(planned.toString())
    // Every deadlock (40P01) the server met, even one it then ran again successfully.
    const conflicts: string[] = []
    const watch = <T>(work: Promise<T>) => work.catch((err: { code?: string }) => { if (err.code) conflicts.push(err.code); throw err })
    const fx = await buildFixture({ ...db, query: (sql, params) => watch(db.query(sql, params)), transaction: (fn) => watch(db.transaction(fn)) })
    // Its own escalation timer stays out of the way: tests run the escalator when they mean to.
    await fx.app.services.escalator.stop()
    fixtures.push({ fx, close: async () => { await fx.app.close(); await db.close() } })
    return { fx, conflicts }
  }
  const openPanic = async (deviceIds: string[], minutesAgo = 0): Promise<void> => {
    for (const id of deviceIds) {
      await watcher.query(`INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, last_press_at)
        VALUES ($1, $2, 'panic', 'open', 'z1', now() - make_interval(mins => $3), now())`, [`alert-${id}`, id, minutesAgo])
    }
  }

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    const db = await openPostgres(url)
    await migrate(db)
    // In the table, each pair's later id first; a thousand more so the planner scans it as a fleet's.
    await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash)
      SELECT id, 'button', id, 'z1', 'x' FROM unnest(ARRAY['lock-a', 'lock-b', 'lock-c', 'scan-y', 'scan-x',
        'esc-b', 'esc-a', 'raise-b', 'raise-a', 'cancel-b', 'cancel-a']) WITH ORDINALITY AS d(id, n) ORDER BY n`)
    await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash)
      SELECT 'fleet-' || lpad(i::text, 5, '0'), 'button', 'f', 'z1', 'x' FROM generate_series(1, 1000) i`)
    await db.query('ANALYZE devices')
    await db.close()
    watcher = await connect()
  })

  afterEach(async () => {
    for (const holder of holders.splice(0)) await holder.query('ROLLBACK').catch(() => {})
    for (const { close } of fixtures.splice(0)) await close()
  })

  afterAll(async () => {
    for (const client of clients) await client.end().catch(() => {})
    await drop?.()
  })

  it('locks the devices of every batch in one order, so batches listing them in opposite orders both go through', async () => {
    // Someone else holds each row, so both batches queue on their first row; released together,
    // a batch that locked in its own listing order would now wait for the other's first row.
    const holdA = await hold('devices', 'lock-a')
    const holdB = await hold('devices', 'lock-b')
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
    const holdX = await hold('devices', 'scan-x')
    const client = await connect('a scan of the table')
    const t = Date.now()
    const stored = storeEvents(queryable(client), [gatewayEvent('scan-x', { seq: 1, type: 'test' }, t), gatewayEvent('scan-y', { seq: 2, type: 'test' }, t + 1)])
      .then(() => 'stored', (err: { code?: string }) => err.code ?? 'failed')
    expect(await waitingForLocks(1)).toBe(1)
    // Scanning the table, the batch would have locked scan-y on its way to scan-x; another
    // batch holding scan-x and wanting scan-y would then deadlock with it.
    expect(await isFree('devices', 'scan-y')).toBe(true)
    await holdX.query('COMMIT')
    expect(await stored).toBe('stored')
  })

  it.each(Object.keys(PLANS).map((plan, i) => ({ plan: plan as Plan, seq: 100 * (i + 1) })))('locks every device a batch transaction writes in its first statement, so a presence change never deadlocks with an alarm batch ($plan)', async ({ plan, seq }) => {
    // A batch with presence changes is a transaction of several statements: its events lock
    // their devices, then each presence change writes its own device. Were those taken one by
    // one, this one (events of b; then c, then a going offline) would hold b and wait for a
    // while an alarm batch holding a waits for b: a deadlock, noticed after a second.
    const { fx, conflicts } = await serverWith(plan)
    // The table in id order, as a fleet provisioned in order has it: a scan meets a, b, c.
    await watcher.query('CLUSTER devices USING devices_pkey')
    await watcher.query('ANALYZE devices')
    const holdC = await hold('devices', 'lock-c')
    const t = Date.now()
    const withPresence = fx.ingest({
      events: [gatewayEvent('lock-b', { seq, type: 'test' }, t)],
      presence: [
        { deviceId: 'lock-c', gatewayId: 'gw-test', state: 'offline', at: t + 1, reason: 'will' },
        { deviceId: 'lock-a', gatewayId: 'gw-test', state: 'offline', at: t + 2, reason: 'will' }
      ]
    })
    withPresence.catch(() => {}) // awaited below; an expectation failing first must not leave it unheard
    // It waits for c, holding whatever it locked before.
    expect(await waitingForLocks(1)).toBe(1)
    const alarms = fx.ingest({ events: [gatewayEvent('lock-a', { seq: seq + 1, type: 'press' }, t + 3), gatewayEvent('lock-b', { seq: seq + 2, type: 'press' }, t + 4)] })
    alarms.catch(() => {})
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
  })

  it('has the escalator take due alerts in device order, holding none while it waits for the first', async () => {
    // A small table's plan walks the alerts' (device, kind) index, in device order by chance;
    // a scan (or the index by time) meets them in another: b's alert first, in the table and in time.
    const { fx } = await serverWith('a scan of the table')
    await openPanic(['esc-b'], 30)
    await openPanic(['esc-a'], 60)
    const holdA = await hold('alerts', 'alert-esc-a')
    const escalated = fx.app.services.escalator.check()
    expect(await waitingForLocks(1)).toBe(1)
    // Taking them in the table's order, it would hold b's alert now; a batch pressing a and b
    // again would hold a's and wait for b's: a deadlock.
    expect(await isFree('alerts', 'alert-esc-b')).toBe(true)
    await holdA.query('COMMIT')
    expect(await escalated).toBe(2)
  })

  it('has a batch take the alerts its presses join in device order, holding none while it waits for the first', async () => {
    // Scanning the devices meets b first: a's row moves to the table's end.
    await watcher.query("UPDATE devices SET name = name WHERE id = 'raise-a'")
    const { rows: inTable } = await watcher.query("SELECT id FROM devices WHERE id IN ('raise-a', 'raise-b') ORDER BY ctid")
    expect(inTable.map((r) => r.id)).toEqual(['raise-b', 'raise-a'])
    await openPanic(['raise-b', 'raise-a'])
    const holdA = await hold('alerts', 'alert-raise-a')
    const client = await connect('a scan of the table')
    // Pressed again, b listed first: both join their open alerts.
    const presses = ['raise-b', 'raise-a'].map((id, i) => gatewayEvent(id, { seq: 2, type: 'press' }, Date.now() + i))
    const stored = storeEvents(queryable(client), presses, { causes: pressCauses(presses) }).then(() => 'stored', (err: { code?: string }) => err.code ?? 'failed')
    expect(await waitingForLocks(1)).toBe(1)
    expect(await isFree('alerts', 'alert-raise-b')).toBe(true)
    await holdA.query('COMMIT')
    expect(await stored).toBe('stored')
  })

  it('has a batch with cancels take its alerts first, in device order, holding none while it waits for the first', async () => {
    // Cancels take their alerts one at a time, in the batch's order (b's first here); the
    // escalator takes the same alerts in device order without their devices.
    const { fx } = await serverWith('a scan of the table')
    await openPanic(['cancel-b', 'cancel-a'])
    const holdA = await hold('alerts', 'alert-cancel-a')
    const t = Date.now()
    const cancels = fx.ingest({ events: ['cancel-b', 'cancel-a'].map((id, i) => gatewayEvent(id, { seq: 5, type: 'cancel', pin: '1234' }, t + i)) })
    cancels.catch(() => {})
    expect(await waitingForLocks(1)).toBe(1)
    expect(await isFree('alerts', 'alert-cancel-b')).toBe(true)
    await holdA.query('COMMIT')
    // These devices have no PIN: both cancels are refused, and answered.
    expect((await cancels).map((r) => [r.status, r.ackState])).toEqual([['stored', 'rejected'], ['stored', 'rejected']])
  })
})
