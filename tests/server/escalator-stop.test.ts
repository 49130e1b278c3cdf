/**
 * Stopping the escalator waits for every pass still running, one abandoned at its deadline
 * included: on shutdown the database is closed right after, and a slow pass (a busy embedded
 * database) that was abandoned but still writes must not find it closed mid-transaction. A pass
 * that never settles (a dead connection) holds the stop `stopWaitMs` at most.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyBaseLogger } from 'fastify'
import { databaseBackends } from '../helpers/postgres.js'
import type { Database } from '../../server/db/database.js'
import { ServerMetrics } from '../../server/metrics.js'
import { Bus } from '../../server/bus.js'
import { Escalator } from '../../server/escalation/escalator.js'
import { WebhookSender } from '../../server/escalation/webhooks.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { settledWithin } from './half-open-proxy.js'

const PASS_DEADLINE_MS = 200

/** `db` whose transactions begin only after `delayMs` (or never), reporting when each one ended. */
function slowTransactions (db: Database, delayMs: number | 'never', ended: () => void): Database {
  return {
    ...db,
    transaction: async (fn, options) => {
      await new Promise((resolve) => { if (delayMs !== 'never') setTimeout(resolve, delayMs) })
      try { return await db.transaction(fn, options) } finally { ended() }
    }
  }
}

const silentLog = () => ({ error: vi.fn(), warn: vi.fn(), info: vi.fn(), debug: vi.fn() })

describe.each(databaseBackends.filter((b) => !b.timescale))('stopping the escalator ($name)', (backend) => {
  let db: Database
  let dispose: () => Promise<void>
  let fx: Fixture

  beforeAll(async () => {
    ({ db, dispose } = await backend.open())
    // The app's own escalator finds nothing due within the tests (an hour).
    fx = await buildFixture(db, { settings: { escalateAfterMs: 3_600_000 } })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  // Stopping may wait 30 s here: long enough for a slow pass on a machine however busy.
  const escalatorOn = (database: Database, { log = silentLog(), stopWaitMs = 30_000 } = {}) => {
    const metrics = new ServerMetrics(db)
    return new Escalator(database, new Bus(), new WebhookSender(db, { urls: [] }, metrics), metrics,
      { escalateAfterMs: 1000, passDeadlineMs: PASS_DEADLINE_MS, stopWaitMs }, log as unknown as FastifyBaseLogger)
  }

  it('waits for a pass abandoned at its deadline that is still writing', async () => {
    await fx.provision('btn-stop-slow')
    // Pressed 5 s ago: due for an escalator with a 1 s interval.
    await fx.ingest({ events: [gatewayEvent('btn-stop-slow', { seq: 1, type: 'press' }, Date.now() - 5000)] })
    let passEnded = false
    const escalator = escalatorOn(slowTransactions(db, 5 * PASS_DEADLINE_MS, () => { passEnded = true }))

    expect(await escalator.check(), 'abandoned at its deadline').toBe(0)
    expect(passEnded).toBe(false)
    await escalator.stop()
    expect(passEnded, 'stop() answered while the abandoned pass was still running').toBe(true)
    // It committed before the stop was done, so before the database could be closed.
    const { body } = await fx.call('GET', '/v1/alerts?kind=panic&deviceId=btn-stop-slow')
    expect(body[0].escalationLevel).toBeGreaterThanOrEqual(5)
    // Nothing is due for the tests below.
    expect((await fx.call('POST', `/v1/alerts/${body[0].id}/acknowledge`, {}, await fx.tokenFor('operator'))).status).toBe(200)
  })

  it('waits for the pass in progress too', async () => {
    let passEnded = false
    const escalator = escalatorOn(slowTransactions(db, PASS_DEADLINE_MS / 2, () => { passEnded = true }))
    const pass = escalator.check()
    await escalator.stop()
    expect(passEnded).toBe(true)
    expect(await pass).toBe(0)
  })

  it('gives up on a pass that never settles after stopWaitMs, and says so', async () => {
    const log = silentLog()
    const escalator = escalatorOn(slowTransactions(db, 'never', () => {}), { log, stopWaitMs: 300 })
    expect(await escalator.check()).toBe(0)
    const started = performance.now()
    expect(await settledWithin(escalator.stop(), 10_000), 'a hung pass held the stop').toEqual({ value: undefined })
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    expect(log.error).toHaveBeenCalledWith({ loop: 'escalator' }, expect.stringMatching(/stopped with a pass still running/))
  })

  it('stops at once when no pass is running', async () => {
    const escalator = escalatorOn(db)
    expect(await escalator.check()).toBe(0)
    const started = performance.now()
    await escalator.stop()
    expect(performance.now() - started, "waited for nothing").toBeLessThan(5000)
  })
})
