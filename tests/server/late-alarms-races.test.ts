/**
 * A late press (dated before its device's alert was resolved) and an operator resolving that
 * alert at the same time. Whether the press falls before a closing is decided in the statement
 * that raises it, under the alert's lock: decided by a query before it, an operator resolving in
 * between gave the press an alert dated minutes back (escalated at once, its response times
 * counting minutes nobody waited). Runs on embedded PGlite, and on PostgreSQL when
 * TEST_DATABASE_URL is set (the resolution truly concurrent with the statement: PostgreSQL only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database, Queryable } from '../../server/db/database.js'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

const MINUTE = 60_000

/**
 * The database, with two seams: `beforeIngestStatement` runs once before the next statement
 * storing a batch is sent, and `pauseNextResolution` holds the next resolution's transaction
 * just before its COMMIT (its alert locked and already resolved) until `release` is called.
 */
function seamed (db: Database) {
  let beforeIngestStatement: (() => Promise<void>) | undefined
  let pause: { reached: () => void, released: Promise<void> } | undefined
  const wrapped = Object.create(db) as Database
  wrapped.query = async <Row>(sql: string, params?: unknown[]) => {
    const before = beforeIngestStatement
    if (before && sql.includes('INSERT INTO event_ids')) {
      beforeIngestStatement = undefined
      await before()
    }
    return db.query<Row>(sql, params)
  }
  wrapped.transaction = (work, options) => db.transaction(async (tx) => {
    let resolving = false
    const watched: Queryable = {
      query: (sql, params) => {
        if (sql.includes('UPDATE alerts SET state') && params?.[1] === 'resolved') resolving = true
        return tx.query(sql, params)
      }
    }
    const result = await work(watched)
    const held = resolving ? pause : undefined
    if (held) {
      pause = undefined
      held.reached()
      await held.released
    }
    return result
  }, options)
  return {
    db: wrapped,
    runBeforeNextIngestStatement (fn: () => Promise<void>) { beforeIngestStatement = fn },
    /** Resolves once the next resolution holds its alert, resolved but not committed; `release` lets it commit. */
    pauseNextResolution () {
      let release!: () => void
      const released = new Promise<void>((resolve) => { release = resolve })
      const reached = new Promise<void>((resolve) => { pause = { reached: resolve, released } })
      return { reached, release }
    }
  }
}

describe.each(databaseBackends.filter((b) => !b.timescale))('a late press while its alert is being resolved, on $name', (backend) => {
  let fx: Fixture
  let seams: ReturnType<typeof seamed>
  let dispose: () => Promise<void>
  let operator: string
  const onPostgres = backend.name === 'PostgreSQL'

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    seams = seamed(opened.db)
    // No escalation pass comes between (it would lock the alerts these tests hold): the check
    // that a press was not dated back is its alert's opening time.
    fx = await buildFixture(seams.db, { settings: { cancelWindowMs: 30_000, escalateAfterMs: 60 * MINUTE } })
    operator = await fx.tokenFor('operator')
    await fx.provision('kiosk-race', { kind: 'kiosk' })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const alertOf = async (id: string) => (await fx.call('GET', `/v1/alerts/${id}`, undefined, operator)).body
  const resolve = async (id: string) => {
    const { status } = await fx.call('POST', `/v1/alerts/${id}/resolve`, { outcome: 'real' }, operator)
    expect(status).toBe(200)
  }
  /** A press 5 minutes ago opening an alert, and the same device's next press, made 5 s after it, held until now. */
  const pressAndLatePress = async (deviceId: string) => {
    await fx.provision(deviceId)
    const t0 = Date.now() - 5 * MINUTE
    const [first] = await fx.ingest({ events: [gatewayEvent(deviceId, { seq: 1, type: 'press' }, t0, 'gw-a')], sentAt: Date.now() })
    return { alertId: first!.alertId!, late: gatewayEvent(deviceId, { seq: 2, type: 'press' }, t0 + 5_000, 'gw-b') }
  }
  const expectNewAlertAtOurTime = async (deviceId: string, closedId: string, late: { alertId?: string, status: string } | undefined, before: number) => {
    expect(late).toMatchObject({ status: 'stored', alertState: 'open' })
    expect(late!.alertId).not.toBe(closedId)
    expect(Date.parse((await alertOf(late!.alertId!)).openedAt)).toBeGreaterThanOrEqual(before)
    expect(await alertOf(closedId)).toMatchObject({ state: 'resolved', pressCount: 1 })
    expect((await fx.call('GET', `/v1/alerts?deviceId=${deviceId}`, undefined, operator)).body).toHaveLength(2)
  }

  it('an operator resolving after the batch came in and before it was stored: a new alert at the server\'s time', async () => {
    const { alertId, late } = await pressAndLatePress('btn-race-between')
    seams.runBeforeNextIngestStatement(() => resolve(alertId))
    const before = Date.now()
    const [result] = await fx.ingest({ events: [late], sentAt: Date.now() })
    await expectNewAlertAtOurTime('btn-race-between', alertId, result, before)
  })

  // PGlite is one connection: a statement and a resolution never overlap there.
  for (const path of ['alone', 'in a transaction'] as const) {
    it.runIf(onPostgres)(`an operator's resolution that commits while the statement raising the press waits for its alert (batch stored ${path}): a new alert at the server's time`, async () => {
      const deviceId = `btn-race-${path === 'alone' ? 'alone' : 'tx'}`
      const { alertId, late } = await pressAndLatePress(deviceId)
      const paused = seams.pauseNextResolution()
      const resolving = resolve(alertId)
      await paused.reached
      const before = Date.now()
      // A kiosk report beside it makes the batch a transaction (ingest.ts storingAndRaising).
      const events = path === 'alone' ? [late] : [late, gatewayEvent('kiosk-race', { seq: Date.now(), type: 'report', report: { category: 'noise', text: 'race' } }, Date.now())]
      const ingesting = fx.ingest({ events, sentAt: Date.now() })
      await waitForIngestWaitingOnALock(fx.db)
      paused.release()
      await resolving
      const [result] = await ingesting
      await expectNewAlertAtOurTime(deviceId, alertId, result, before)
    })
  }
})

/** Until a statement storing a batch waits for a lock (another transaction holds a row it needs). */
async function waitForIngestWaitingOnALock (db: Queryable): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const waiting = await db.query(`SELECT 1 FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%json_to_recordset%'`)
    if (waiting.length > 0) return
    if (Date.now() > deadline) throw new Error('the ingest statement never waited for the alert')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
