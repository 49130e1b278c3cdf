/**
 * A resolve closes the alert the operator saw, never presses they did not. Before: the operator
 * read an alert of one press and chose "prank"; the person pressed again (a real emergency after
 * all); the resolve went through, closed both presses, and the device heard "resolved" and put
 * its light out. Now an operator action may carry the `version` it was decided on, and a resolve
 * of an alert changed since is refused (409 ALERT_CHANGED) with nothing changed.
 * On both stores; on PostgreSQL also with the press and the resolve racing for the alert's row.
 */
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends, createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { openPostgres } from '../../server/db/postgres.js'
import { topics } from '../../protocol/index.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'

/** The acks queued for a device (what its gateway will deliver), as `state` strings in order. */
async function acksOf (fx: Fixture, deviceId: string): Promise<string[]> {
  const { body } = await fx.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)
  return (body.messages as Array<{ topic: string, payload: { state: string } }>)
    .filter((m) => m.topic === topics.ack(deviceId)).map((m) => m.payload.state)
}

for (const backend of databaseBackends.filter((b) => !b.timescale)) {
  describe(`resolving with the version seen on ${backend.name}`, () => {
    let fx: Fixture
    let dispose: () => Promise<void>
    let operator: string
    let seq = 0
    const press = (deviceId: string) => fx.ingest({ events: [gatewayEvent(deviceId, { seq: ++seq, type: 'press' }, Date.now())] })
    const alertOf = async (deviceId: string) => (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}&limit=10`, undefined, operator)).body as any[]

    beforeAll(async () => {
      const opened = await backend.open()
      dispose = opened.dispose
      fx = await buildFixture(opened.db)
      // Escalations happen when a test runs a pass.
      await fx.app.services.escalator.stop()
      operator = await fx.tokenFor('operator')
    }, 180_000)

    afterAll(async () => {
      await fx?.app.close()
      await dispose?.()
    })

    it('refuses a resolve after a press the operator did not see, and changes nothing', async () => {
      await fx.provision('btn-swallow')
      await press('btn-swallow')
      const [seen] = await alertOf('btn-swallow')
      expect(seen).toMatchObject({ state: 'open', pressCount: 1 })
      // The person presses again while the operator decides.
      await press('btn-swallow')
      const refused = await fx.call('POST', `/v1/alerts/${seen.id}/resolve`, { outcome: 'prank', note: 'one press, prank', expectedVersion: seen.version }, operator)
      expect(refused.status).toBe(409)
      expect(refused.body).toMatchObject({ statusCode: 409, code: 'ALERT_CHANGED' })
      expect(refused.body.message).toContain('2 presses')
      expect(refused.body.message).toContain(`since version ${seen.version}`)
      // Still open, both presses in it, no transition written, the device told nothing new.
      const now = (await fx.call('GET', `/v1/alerts/${seen.id}`, undefined, operator)).body
      expect(now).toMatchObject({ state: 'open', pressCount: 2, outcome: null, resolvedAt: null })
      expect(now.transitions.map((t: { to: string }) => t.to)).toEqual(['open'])
      expect(await acksOf(fx, 'btn-swallow')).not.toContain('resolved')
      // Decided again on what is there now, it goes through.
      const resolved = await fx.call('POST', `/v1/alerts/${seen.id}/resolve`, { outcome: 'real', expectedVersion: now.version }, operator)
      expect(resolved.status).toBe(200)
      expect(resolved.body).toMatchObject({ state: 'resolved', outcome: 'real', pressCount: 2 })
      expect(await acksOf(fx, 'btn-swallow')).toContain('resolved')
    })

    it('refuses a resolve after another desk acted or the alert escalated; acknowledge and dispatch go through', async () => {
      await fx.provision('btn-desks')
      await press('btn-desks')
      const [seen] = await alertOf('btn-desks')
      // A press joining never holds back "help is coming".
      await press('btn-desks')
      const acknowledged = await fx.call('POST', `/v1/alerts/${seen.id}/acknowledge`, { expectedVersion: seen.version }, operator)
      expect(acknowledged.status).toBe(200)
      expect(acknowledged.body).toMatchObject({ state: 'acknowledged', pressCount: 2 })
      // Another desk dispatches; a resolve decided on the acknowledged alert is refused.
      const dispatched = await fx.call('POST', `/v1/alerts/${seen.id}/dispatch`, { expectedVersion: seen.version }, operator)
      expect(dispatched.status).toBe(200)
      const stale = await fx.call('POST', `/v1/alerts/${seen.id}/resolve`, { outcome: 'false_alarm', expectedVersion: acknowledged.body.version }, operator)
      expect(stale).toMatchObject({ status: 409, body: { code: 'ALERT_CHANGED' } })
      expect((await fx.call('GET', `/v1/alerts/${seen.id}`, undefined, operator)).body.state).toBe('dispatched')
      expect((await fx.call('POST', `/v1/alerts/${seen.id}/resolve`, { outcome: 'real', expectedVersion: dispatched.body.version }, operator)).status).toBe(200)

      // An escalation since is a change too: a press made 90 s ago, nobody acknowledged it.
      await fx.provision('btn-escalates')
      await fx.ingest({ events: [gatewayEvent('btn-escalates', { seq: ++seq, type: 'press' }, Date.now() - 90_000)] })
      const [open] = await alertOf('btn-escalates')
      expect(open.escalationLevel).toBe(0)
      expect(await fx.app.services.escalator.check()).toBe(1)
      expect((await fx.call('POST', `/v1/alerts/${open.id}/resolve`, { outcome: 'test', expectedVersion: open.version }, operator)).status).toBe(409)
      // Without a version the resolve is what it always was (scripts, the simulator's operator).
      expect((await fx.call('POST', `/v1/alerts/${open.id}/resolve`, { outcome: 'test' }, operator)).status).toBe(200)
    })

    it('says what is wrong with a version that is not one', async () => {
      await fx.provision('btn-bad-version')
      await press('btn-bad-version')
      const [alert] = await alertOf('btn-bad-version')
      for (const expectedVersion of ['1', -1, 1.5, null]) {
        const answer = await fx.call('POST', `/v1/alerts/${alert.id}/resolve`, { outcome: 'test', expectedVersion }, operator)
        expect(answer.status, JSON.stringify(expectedVersion)).toBe(400)
        expect(answer.body.message).toMatch(/^body\/expectedVersion /)
      }
      expect((await fx.call('GET', `/v1/alerts/${alert.id}`, undefined, operator)).body.state).toBe('open')
    })
  })
}

/**
 * The press and the resolve meet at the alert's row: someone else holds it, the two queue behind,
 * in a known order. The check is made under the resolve's own lock, so whichever comes first,
 * no resolved alert ever holds a press its operator did not see.
 */
describe.skipIf(!testDatabaseUrl)('a press and a resolve racing for the alert (PostgreSQL)', () => {
  const APP = 'resolve-race'
  let url: string
  let drop: () => Promise<void>
  let fx: Fixture
  let closeDb: () => Promise<void>
  let operator: string
  let seq = 100
  const clients: pg.Client[] = []
  let holder: pg.Client | undefined

  const connect = async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    clients.push(client)
    return client
  }
  const waitingForLocks = async (watcher: pg.Client, n: number) => {
    const waiting = async () => Number((await watcher.query(
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'", [APP])).rows[0].count)
    for (let i = 0; i < 1500 && await waiting() < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    return waiting()
  }

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    const named = new URL(url)
    named.searchParams.set('application_name', APP)
    const db = await openPostgres(named.toString())
    closeDb = () => db.close()
    fx = await buildFixture(db)
    await fx.app.services.escalator.stop()
    operator = await fx.tokenFor('operator')
  }, 180_000)

  afterEach(async () => {
    await holder?.query('ROLLBACK').catch(() => {})
    holder = undefined
  })

  afterAll(async () => {
    await fx?.app.close()
    await closeDb?.()
    for (const client of clients) await client.end().catch(() => {})
    await drop?.()
  })

  for (const first of ['press', 'resolve'] as const) {
    it(`keeps every press seen or open when the ${first} gets the row first`, async () => {
      const deviceId = `btn-race-${first}`
      await fx.provision(deviceId)
      await fx.ingest({ events: [gatewayEvent(deviceId, { seq: ++seq, type: 'press' }, Date.now())] })
      const [seen] = (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}`, undefined, operator)).body
      const watcher = await connect()
      holder = await connect()
      await holder.query('BEGIN')
      await holder.query('SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE', [seen.id])

      const pressing = () => fx.ingest({ events: [gatewayEvent(deviceId, { seq: ++seq, type: 'press' }, Date.now())] })
      const resolving = () => fx.call('POST', `/v1/alerts/${seen.id}/resolve`, { outcome: 'prank', expectedVersion: seen.version }, operator)
      // One queues on the row, then the other behind it: row locks are granted in that order.
      const [a, b] = first === 'press' ? [pressing, resolving] : [resolving, pressing]
      const firstDone = a()
      expect(await waitingForLocks(watcher, 1)).toBe(1)
      const secondDone = b()
      expect(await waitingForLocks(watcher, 2)).toBe(2)
      await holder.query('COMMIT')
      holder = undefined
      await Promise.all([firstDone, secondDone])
      const resolve = await (first === 'press' ? secondDone : firstDone) as { status: number, body: any }

      const alerts = (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}`, undefined, operator)).body as any[]
      const closedUnseen = alerts.filter((a) => a.state === 'resolved' && a.pressCount > seen.pressCount)
      expect(closedUnseen, 'a resolved alert holding a press its operator never saw').toEqual([])
      if (first === 'press') {
        // The press joined while the resolve waited: refused, the alert open with both presses.
        expect(resolve).toMatchObject({ status: 409, body: { code: 'ALERT_CHANGED' } })
        expect(alerts).toMatchObject([{ id: seen.id, state: 'open', pressCount: 2 }])
      } else {
        // Resolved as seen; the press after it opens a new alert.
        expect(resolve.status).toBe(200)
        expect(alerts.map((a) => [a.state, a.pressCount]).sort()).toEqual([['open', 1], ['resolved', 1]])
      }
    })
  }
})
