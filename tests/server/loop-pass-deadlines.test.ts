/**
 * The background loops against a pass that never settles (a query on a database connection gone
 * half-open: pg-half-open.test.ts makes one for real): the escalator, the webhook sender and the
 * gateway watch each abandon it at their deadline and run the next pass, count it, and keep the
 * time of their last completed pass; `/readyz` says not ready while the escalator completes none
 * for minutes. Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import type { Database } from '../../server/db/database.js'
import { ServerMetrics } from '../../server/metrics.js'
import { Bus } from '../../server/bus.js'
import { Escalator } from '../../server/escalation/escalator.js'
import { WebhookSender } from '../../server/escalation/webhooks.js'
import { GatewayWatch } from '../../server/supervision/gateway-watch.js'
import { AlertLifecycle } from '../../server/alerts/lifecycle.js'
import { DownlinkQueue } from '../../server/downlink/queue.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { settledWithin } from './half-open-proxy.js'

const PASS_DEADLINE_MS = 300

/** `db`, whose first query or transaction that `hangs` picks never settles, as on a dead connection. */
function hangingOnce (db: Database, hangs: (sql: string) => boolean): Database {
  let hung = false
  const hang = (sql: string) => !hung && hangs(sql) && (hung = true)
  const never = new Promise<never>(() => {})
  return {
    ...db,
    query: (sql, params) => hang(sql) ? never : db.query(sql, params),
    transaction: (fn, options) => hang('transaction') ? never : db.transaction(fn, options)
  }
}

const passes = async (metrics: ServerMetrics, loop: string) => {
  const { values } = await metrics.loopPasses.get()
  const count = (result: string) => values.find((v) => v.labels.loop === loop && v.labels.result === result)?.value ?? 0
  const last = (await metrics.loopLastPass.get()).values.find((v) => v.labels.loop === loop)?.value
  return { ok: count('ok'), failed: count('failed'), abandoned: count('abandoned'), last }
}

describe.each(databaseBackends.filter((b) => !b.timescale))('background passes that never settle ($name)', (backend) => {
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

  it('the escalator abandons a pass hung at its deadline, and the next pass escalates', async () => {
    await fx.provision('btn-hang-esc')
    // Pressed 5 s ago: due for an escalator with a 1 s interval.
    await fx.ingest({ events: [gatewayEvent('btn-hang-esc', { seq: 1, type: 'press' }, Date.now() - 5000)] })
    const metrics = new ServerMetrics(db)
    const escalator = new Escalator(hangingOnce(db, (sql) => sql === 'transaction'), new Bus(), new WebhookSender(db, { urls: [] }, metrics), metrics,
      { escalateAfterMs: 1000, passDeadlineMs: PASS_DEADLINE_MS })

    const hung = await settledWithin(escalator.check(), 5000)
    expect(hung, 'the pass on a dead connection held the escalator').toEqual({ value: 0 })
    expect(await settledWithin(escalator.check(), 5000)).toEqual({ value: 1 })
    const { body } = await fx.call('GET', '/v1/alerts?kind=panic&deviceId=btn-hang-esc')
    expect(body[0].escalationLevel).toBeGreaterThanOrEqual(1)
    const counted = await passes(metrics, 'escalator')
    expect(counted).toMatchObject({ ok: 1, abandoned: 1, failed: 0 })
    expect(counted.last).toBeGreaterThan(Date.now() / 1000 - 10)
    await escalator.stop()
  })

  it('the gateway watch abandons a pass hung at its deadline, and the next pass runs', async () => {
    const metrics = new ServerMetrics(db)
    const bus = new Bus()
    const watch = new GatewayWatch(hangingOnce(db, (sql) => sql.includes('clock_timestamp')), bus,
      new AlertLifecycle(db, new DownlinkQueue(db, bus), bus, metrics), metrics, { lostAfterMs: 60_000, passDeadlineMs: PASS_DEADLINE_MS })

    expect(await settledWithin(watch.check(), 5000), 'the pass on a dead connection held the watch').toEqual({ value: undefined })
    expect(await settledWithin(watch.check(), 5000)).toEqual({ value: undefined })
    expect(await passes(metrics, 'gateway_watch')).toMatchObject({ ok: 1, abandoned: 1, failed: 0 })
    await watch.stop()
  })

  it('the webhook sender abandons a look hung at its deadline, and the next look delivers', async () => {
    const bodies: string[] = []
    const receiver = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk: Buffer) => { body += chunk.toString('utf8') })
      request.on('end', () => { bodies.push(body); response.statusCode = 204; response.end() })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`
    const metrics = new ServerMetrics(db)
    const sender = new WebhookSender(hangingOnce(db, (sql) => sql.includes('webhook_deliveries')),
      { urls: [url], secret: 'webhook-secret-for-tests', pollMs: 50, passDeadlineMs: PASS_DEADLINE_MS }, metrics)
    try {
      await db.transaction((tx) => sender.enqueue(tx, 'alert.escalated', { alertId: 'hang-test' }))
      sender.start()
      await vi.waitFor(() => expect(bodies).toHaveLength(1), { timeout: 5000 })
      expect(JSON.parse(bodies[0]!).data).toEqual({ alertId: 'hang-test' })
      expect(await passes(metrics, 'webhooks')).toMatchObject({ abandoned: 1 })
      expect((await passes(metrics, 'webhooks')).ok).toBeGreaterThanOrEqual(1)
    } finally {
      expect(await settledWithin(sender.stop(), 5000), 'stop waited for the hung look').not.toBe('pending')
      await new Promise<void>((resolve) => { receiver.closeAllConnections(); receiver.close(() => resolve()) })
    }
  })

  it('/readyz says not ready once the escalator has completed no pass for two minutes, and ready again after one', async () => {
    // The escalator's interval and the monotonic clock the stall is measured on are fake.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] })
    const stalled = await buildFixture(db, { settings: { escalateAfterMs: 3_600_000 } })
    // The escalator queries through the loops' connections, where there are pools.
    const loops = db.loops ?? db
    const transaction = loops.transaction
    try {
      const ready = async () => (await stalled.call('GET', '/readyz', undefined, ''))
      await vi.advanceTimersByTimeAsync(5000)
      expect((await ready()).status).toBe(200)

      // A pass still on its way (real I/O) would complete after the clock jumps below and count
      // as recent: it is let finish first (check() joins the pass in flight, or runs one).
      await stalled.app.services.escalator.check()
      // Every pass fails (the rest of the server, and /readyz's own query, still reach the database).
      ;(loops as { transaction: Database['transaction'] }).transaction = async () => { throw new Error('escalator cannot reach the database') }
      await vi.advanceTimersByTimeAsync(100_000)
      expect((await ready()).status).toBe(200)
      await vi.advanceTimersByTimeAsync(25_000)
      const notReady = await ready()
      expect(notReady.status).toBe(503)
      expect(notReady.body).toMatchObject({ code: 'NOT_READY', message: expect.stringMatching(/^escalator has completed no pass for 12\d s$/) })
      expect((await stalled.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^sos_loop_passes_total\{loop="escalator",result="failed"\} [1-9]/m)

      ;(loops as { transaction: Database['transaction'] }).transaction = transaction
      await vi.advanceTimersByTimeAsync(5000)
      await stalled.app.services.escalator.check()
      expect((await ready()).status).toBe(200)
      expect((await stalled.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^sos_loop_last_pass_timestamp_seconds\{loop="escalator"\} \d/m)
    } finally {
      ;(loops as { transaction: Database['transaction'] }).transaction = transaction
      await stalled.app.close()
      vi.useRealTimers()
    }
  })
})
