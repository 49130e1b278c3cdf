/**
 * Two batches stored at once never deadlock on the devices they share. Each batch updates its
 * devices' health (last seen, battery) in one statement; were the rows locked in the order the
 * batch happens to list them, an alarm request and a routine batch holding the same two devices
 * in opposite orders would deadlock, and PostgreSQL would only notice after `deadlock_timeout`
 * (1 s): a press a second late. On a city's fleet the planner walks the batch's rows into the
 * devices' primary key (nested loop), which this test forces on a small table.
 * PostgreSQL only (PGlite has one connection, so nothing runs at once there).
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../../server/db/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import type { Queryable } from '../../server/db/database.js'
import { storeEvents } from '../../server/ingest/events.js'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { gatewayEvent } from './fixture.js'

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

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    const db = await openPostgres(url)
    await migrate(db)
    await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash) VALUES
      ('lock-a', 'button', 'a', 'z1', 'x'), ('lock-b', 'button', 'b', 'z1', 'x')`)
    await db.close()
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
    const waiting = async () => Number((await holdA.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].count)
    for (let i = 0; i < 200 && await waiting() < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(await waiting()).toBe(2)
    await Promise.all([holdA.query('COMMIT'), holdB.query('COMMIT')])

    // 40P01 (deadlock detected) for one of them if the rows were locked in listing order.
    expect(await Promise.all(stores.map((s) => s.stored))).toEqual(['stored', 'stored'])
  })
})
