/**
 * The background loops (escalation above all) query through connections of their own: sharing
 * the request pool, an escalation pass queued behind ingest and API reads, and with the pool
 * busy past its 10 s wait limit (a backlog after an outage, exactly when panics wait), it failed
 * pass after pass: nothing escalated while the load lasted. PostgreSQL only (PGlite has one
 * connection in process and no pool).
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testDatabaseUrl } from '../helpers/postgres.js'
import { createScratchDatabase, type ScratchDatabase } from '../../bench/lib/postgres.js'
import { openPostgres } from '../../server/db/postgres.js'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

describe.skipIf(!testDatabaseUrl)('the background loops\' connections', () => {
  let scratch: ScratchDatabase
  let db: Database
  let fx: Fixture

  beforeAll(async () => {
    scratch = await createScratchDatabase('loops', testDatabaseUrl)
    await scratch.pool.end()
    db = await openPostgres(scratch.url, { connectMs: 2_000 })
    fx = await buildFixture(db, { settings: { cancelWindowMs: 30_000, escalateAfterMs: 2_000 } })
  }, 120_000)

  afterAll(async () => {
    await fx?.app.close()
    await db?.close().catch(() => {})
    await scratch?.drop()
  })

  it('escalates an unacknowledged panic while every request connection is busy', async () => {
    await fx.provision('btn-busy-pool')
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-busy-pool', { seq: 1, type: 'press' }, Date.now())], sentAt: Date.now() })
    // Every request connection held by a long statement (a backlog of slow batches).
    const holders = Array.from({ length: 10 }, () => db.query("SELECT pg_sleep(30) /* holder */").catch(() => {}))
    const side = new pg.Client({ connectionString: scratch.url })
    await side.connect()
    try {
      const started = Date.now()
      let level = 0
      while (level === 0 && Date.now() - started < 8_000) {
        await new Promise((resolve) => setTimeout(resolve, 250))
        level = (await side.query('SELECT escalation_level FROM alerts WHERE id = $1', [press!.alertId])).rows[0].escalation_level
      }
      expect(level, 'escalated while the request pool was busy').toBeGreaterThan(0)
    } finally {
      await side.query("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%/* holder */%' AND pid <> pg_backend_pid()")
      await Promise.all(holders)
      await side.end()
    }
  }, 60_000)
})
