/**
 * A PostgreSQL connection gone half-open (the database host lost power, a failover moved its
 * address, a NAT dropped the flow): nothing answers on it and nothing fails. Behind a proxy that
 * does that to the connections open at one instant (half-open-proxy.ts), a query on one fails
 * within the pool's deadline and its connection is destroyed rather than handed to the next
 * caller; the transaction the database still holds open for the vanished client ends, so its
 * locks do not hold up the escalator; and escalation goes on. PostgreSQL only
 * (TEST_DATABASE_URL); deadlines shortened from their defaults (15 to 20 s) to a second or two.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { testDatabaseUrl } from '../helpers/postgres.js'
import { createScratchDatabase, type ScratchDatabase } from '../../bench/lib/postgres.js'
import { openPostgres, QueryDeadlineExceeded, type PostgresTimeouts } from '../../server/db/postgres.js'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { settledWithin, startHalfOpenProxy, type HalfOpenProxy } from './half-open-proxy.js'

const QUERY_DEADLINE_MS = 1500

describe.skipIf(!testDatabaseUrl)('a half-open PostgreSQL connection', () => {
  let scratch: ScratchDatabase
  let proxy: HalfOpenProxy
  const opened: Database[] = []
  const fixtures: Fixture[] = []

  beforeAll(async () => {
    scratch = await createScratchDatabase('fix43', testDatabaseUrl)
    proxy = await startHalfOpenProxy(Number(new URL(testDatabaseUrl!).port || 5432), new URL(testDatabaseUrl!).hostname)
  }, 60_000)

  afterEach(async () => {
    for (const fx of fixtures.splice(0)) await fx.app.close()
    for (const db of opened.splice(0)) await db.close()
  })

  afterAll(async () => {
    proxy?.close()
    await scratch?.drop()
  })

  const open = async (timeouts: Partial<PostgresTimeouts> = {}) => {
    const url = new URL(scratch.url)
    url.hostname = '127.0.0.1'
    url.port = String(proxy.port)
    const db = await openPostgres(url.toString(), { queryDeadlineMs: QUERY_DEADLINE_MS, ...timeouts })
    opened.push(db)
    return db
  }
  const backendPid = async (db: Database) => (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid

  it('fails a query on it within the deadline, destroys the connection, and runs the next query on a fresh one', async () => {
    const db = await open()
    const before = await backendPid(db)
    const closedBefore = proxy.deadClosedByClient()
    proxy.blackhole()

    const started = Date.now()
    const outcome = await settledWithin(db.query('SELECT 1'), 10_000)
    expect(outcome, 'a query on a dead connection never settled').not.toBe('pending')
    expect((outcome as { error: unknown }).error).toBeInstanceOf(QueryDeadlineExceeded)
    expect(Date.now() - started).toBeLessThan(QUERY_DEADLINE_MS + 2000)
    // Destroyed, not returned to the pool: the client closed its socket.
    await vi.waitFor(() => expect(proxy.deadClosedByClient()).toBe(closedBefore + 1), { timeout: 2000 })

    const next = await settledWithin(backendPid(db), 5000)
    expect(next).toMatchObject({ value: expect.any(Number) })
    expect((next as { value: number }).value).not.toBe(before)
  })

  it('does not hand out the idle connections that died at the same instant, once one was found dead', async () => {
    const db = await open()
    // Four connections, idle in the pool.
    await Promise.all([1, 2, 3, 4].map(() => db.query('SELECT pg_sleep(0.2)')))
    const closedBefore = proxy.deadClosedByClient()
    proxy.blackhole()
    expect((await settledWithin(db.query('SELECT 1'), 10_000)) as { error: unknown }).toMatchObject({ error: expect.any(QueryDeadlineExceeded) })

    // The next callers pay no deadline each: the other three are closed, fresh ones opened.
    const started = Date.now()
    for (let i = 0; i < 3; i++) expect(await settledWithin(db.query<{ one: number }>('SELECT 1 AS one'), 5000)).toEqual({ value: [{ one: 1 }] })
    expect(Date.now() - started).toBeLessThan(QUERY_DEADLINE_MS)
    await vi.waitFor(() => expect(proxy.deadClosedByClient()).toBe(closedBefore + 4), { timeout: 2000 })
  })

  it('fails a transaction on it within the deadline, and the next transaction runs on a fresh connection', async () => {
    const db = await open()
    await db.query('CREATE TABLE IF NOT EXISTS fix43_rows (id int PRIMARY KEY)')
    const closedBefore = proxy.deadClosedByClient()
    const outcome = await settledWithin(db.transaction(async (tx) => {
      await tx.query('INSERT INTO fix43_rows VALUES (1)')
      proxy.blackhole()
      await tx.query('INSERT INTO fix43_rows VALUES (2)')
    }), 10_000)
    expect(outcome, 'a transaction on a dead connection never settled').not.toBe('pending')
    expect((outcome as { error: unknown }).error).toBeInstanceOf(QueryDeadlineExceeded)
    await vi.waitFor(() => expect(proxy.deadClosedByClient()).toBe(closedBefore + 1), { timeout: 2000 })

    const next = await settledWithin(db.transaction((tx) => tx.query('SELECT 1 AS one')), 5000)
    expect(next).toEqual({ value: [{ one: 1 }] })
  })

  it('ends the transaction the database still holds for the vanished client, so its row locks are freed', async () => {
    const db = await open({ idleInTransactionMs: 1000 })
    await db.query('CREATE TABLE IF NOT EXISTS fix43_locked (id int PRIMARY KEY, n int NOT NULL)')
    await db.query('INSERT INTO fix43_locked VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0')
    await settledWithin(db.transaction(async (tx) => {
      await tx.query('UPDATE fix43_locked SET n = n + 1 WHERE id = 1')
      proxy.blackhole() // the database holds the row lock, and waits for a client that is gone
      await tx.query('SELECT 1')
    }), 10_000)

    // Another connection wants the row: it gets it once the database ends the dead session
    // (within a second here, 15 s by default), and the dead session's update is rolled back.
    const locked = await settledWithin(db.query<{ n: number }>('UPDATE fix43_locked SET n = n + 10 WHERE id = 1 RETURNING n'), 8000)
    expect(locked, 'the row stayed locked by the vanished client').toEqual({ value: [{ n: 10 }] })
  })

  it('goes on escalating after an escalation pass hung on a connection that went half-open mid-transaction', async () => {
    const db = await open({ idleInTransactionMs: 1000 })
    const fx = await buildFixture(db, { settings: { escalateAfterMs: 1000 } })
    fixtures.push(fx)
    await fx.provision('btn-halfopen-1')
    await fx.provision('btn-halfopen-2')
    await fx.ingest({ events: [gatewayEvent('btn-halfopen-1', { seq: 1, type: 'press' }, Date.now())] })

    await new Promise((resolve) => setTimeout(resolve, 1100))
    // The next pass's connection dies right after it locked and escalated the (now due) alert
    // (the escalator queries through the loops' connections).
    const loops = db.loops ?? db
    const transaction = loops.transaction.bind(loops)
    const restore = () => { (loops as { transaction: Database['transaction'] }).transaction = transaction }
    ;(loops as { transaction: Database['transaction'] }).transaction = (fn, options) => {
      restore()
      return transaction(async (tx) => fn({
        async query<Row>(sql: string, params?: unknown[]) {
          const rows = await tx.query<Row>(sql, params)
          if (/UPDATE alerts a SET escalation_level/.test(sql)) proxy.blackhole()
          return rows
        }
      }), options)
    }
    await vi.waitFor(() => expect(loops.transaction).toBe(transaction), { timeout: 5000 })

    // Sent as a gateway does: again on failure (a pooled connection that died at the same
    // instant fails it at its deadline; a retry may then find it stored, a duplicate).
    const batch = { events: [gatewayEvent('btn-halfopen-2', { seq: 1, type: 'press' }, Date.now())] }
    await vi.waitFor(() => fx.ingest(batch), { timeout: 10_000, interval: 100 })
    const level = async (deviceId: string) => (await fx.call('GET', `/v1/alerts?kind=panic&deviceId=${deviceId}`)).body?.[0]?.escalationLevel as number | undefined
    await vi.waitFor(async () => {
      expect(await level('btn-halfopen-1')).toBeGreaterThanOrEqual(1)
      expect(await level('btn-halfopen-2')).toBeGreaterThanOrEqual(1)
    }, { timeout: 15_000, interval: 250 })
    expect((await fx.call('GET', '/readyz', undefined, '')).status).toBe(200)
    expect((await fx.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^sos_loop_passes_total\{loop="escalator",result="failed"\} [1-9]/m)
  }, 40_000)
})
