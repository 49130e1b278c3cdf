/**
 * Two batches stored at once never deadlock on the devices they share. Each batch updates its
 * devices' health (last seen, battery) in one statement; were the rows locked in the order the
 * batch happens to list them, an alarm request and a routine batch holding the same two devices
 * in opposite orders would deadlock, and PostgreSQL would only notice after `deadlock_timeout`
 * (1 s): a press a second late. On a city's fleet the planner walks the batch's rows into the
 * devices' primary key (nested loop), which these tests force on a small table. A batch with
 * presence changes, a transaction of several statements, locks all its devices first.
 * PostgreSQL only (PGlite has one connection, so nothing runs at once there).
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../../server/db/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import type { Queryable } from '../../server/db/database.js'
import { storeEvents } from '../../server/ingest/events.js'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent } from './fixture.js'

describe.skipIf(!testDatabaseUrl)('device rows under concurrent batches (PostgreSQL)', () => {
  let drop: () => Promise<void>
  let url: string
  const clients: pg.Client[] = []

  const connect = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    clients.push(client)
    return client
  }
  const queryable = (client: pg.Client): Queryable => ({ query: async (sql, params) => (await client.query(sql, params)).rows })
  // Asked from a connection of its own: inside a holder's transaction the activity view stays
  // the snapshot it first read.
  let watcher: pg.Client
  const waitingForLocks = async (n: number): Promise<number> => {
    const waiting = async () => Number((await watcher.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].count)
    for (let i = 0; i < 300 && await waiting() < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    return waiting()
  }

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    const db = await openPostgres(url)
    await migrate(db)
    await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash) VALUES
      ('lock-a', 'button', 'a', 'z1', 'x'), ('lock-b', 'button', 'b', 'z1', 'x'), ('lock-c', 'button', 'c', 'z1', 'x')`)
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
    const holdA = await connect()
    const holdB = await connect()
    await holdA.query('BEGIN')
    await holdA.query("SELECT 1 FROM devices WHERE id = 'lock-a' FOR NO KEY UPDATE")
    await holdB.query('BEGIN')
    await holdB.query("SELECT 1 FROM devices WHERE id = 'lock-b' FOR NO KEY UPDATE")

    const batches = [['lock-a', 'lock-b'], ['lock-b', 'lock-a']]
    const t = Date.now()
    const stores = await Promise.all(batches.map(async (order, i) => {
      const client = await connect()
      await client.query('SET enable_hashjoin = off')
      await client.query('SET enable_mergejoin = off')
      await client.query('SET enable_seqscan = off')
      const events = order.map((id, j) => gatewayEvent(id, { seq: 10 * i + j + 1, type: 'test' }, t + j))
      return { client, stored: storeEvents(queryable(client), events).then(() => 'stored', (err: { code?: string }) => err.code ?? 'failed') }
    }))
    // Both batches are waiting for a row before the holders let go.
    expect(await waitingForLocks(2)).toBe(2)
    await Promise.all([holdA.query('COMMIT'), holdB.query('COMMIT')])

    // 40P01 (deadlock detected) for one of them if the rows were locked in listing order.
    expect(await Promise.all(stores.map((s) => s.stored))).toEqual(['stored', 'stored'])
  })

  // The plans PostgreSQL picks for a city's fleet (into the primary key, in the batch's order)
  // and for a small one (a scan of the table, in its order).
  const plans = [
    { fleet: 'a large fleet', options: '-c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off' },
    { fleet: 'a small fleet', options: '-c enable_nestloop=off -c enable_mergejoin=off -c enable_indexscan=off -c enable_bitmapscan=off' }
  ]
  it.each(plans.map((plan, i) => ({ ...plan, seq: 100 * (i + 1) })))('locks every device a batch transaction writes in its first statement, so a presence change never deadlocks with an alarm batch ($fleet)', async ({ options, seq }) => {
    // A batch with presence changes is a transaction of several statements: its events lock
    // their devices, then each presence change locks its own device. Were those taken one by
    // one, this one (events of b; then c, then a going offline) would hold b and wait for a
    // while an alarm batch holding a waits for b: a deadlock, noticed after a second.
    const planned = new URL(url)
    planned.searchParams.set('options', options)
    const db = await openPostgres(planned.toString())
    const conflicts: string[] = []
    const watch = <T>(work: Promise<T>) => work.catch((err: { code?: string }) => { if (err.code) conflicts.push(err.code); throw err })
    const fx = await buildFixture({ ...db, query: (sql, params) => watch(db.query(sql, params)), transaction: (fn) => watch(db.transaction(fn)) })
    // The table's rows in id order, as on a fleet provisioned in order: a scan meets a, b, c.
    await watcher.query('CLUSTER devices USING devices_pkey')
    const holdC = await connect()
    try {
      await holdC.query('BEGIN')
      await holdC.query("SELECT 1 FROM devices WHERE id = 'lock-c' FOR NO KEY UPDATE")

      const t = Date.now()
      const withPresence = fx.ingest({
        events: [gatewayEvent('lock-b', { seq, type: 'test' }, t)],
        presence: [
          { deviceId: 'lock-c', gatewayId: 'gw-test', state: 'offline', at: t + 1, reason: 'will' },
          { deviceId: 'lock-a', gatewayId: 'gw-test', state: 'offline', at: t + 2, reason: 'will' }
        ]
      })
      // It waits for c, holding whatever it locked before.
      expect(await waitingForLocks(1)).toBe(1)
      const alarms = fx.ingest({ events: [gatewayEvent('lock-a', { seq: seq + 1, type: 'press' }, t + 3), gatewayEvent('lock-b', { seq: seq + 2, type: 'press' }, t + 4)] })
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
      // Lets the batches go if an expectation failed before the commit above.
      await holdC.query('ROLLBACK')
      await fx.app.close()
      await db.close()
    }
  })
})
