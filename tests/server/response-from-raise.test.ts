/**
 * Operators are timed from when an alert reached them (migration 14: `alerts.raised_at`, the
 * server's clock at creation, never moved), not from the press, which its gateway may have held
 * (review 51, z-held and z-late). The person's wait, from the press to the first response, stays
 * available as `wait_seconds`. Per alert (alert_response_times), per hour (alert_response_hourly,
 * from the audit trail's snapshot), and in /v1/stats/response-times, on every engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import type { Database } from '../../server/db/database.js'

const MINUTE = 60_000

describe.each(databaseBackends)('response KPIs from the raise on $name', (backend) => {
  let fx: Fixture
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    db = opened.db
    dispose = opened.dispose
    fx = await buildFixture(db)
    await fx.app.services.escalator.stop()
    for (const id of ['btn-held', 'btn-late']) await fx.provision(id, { zone: `zone-${id.slice(4)}` })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const act = async (alertId: string, action: string, body: object = {}) =>
    expect((await fx.call('POST', `/v1/alerts/${alertId}/${action}`, body)).status).toBe(200)
  const perAlert = async (alertId: string) => (await db.query<{ ack_seconds: number, resolve_seconds: number | null, wait_seconds: number }>(
    'SELECT ack_seconds, resolve_seconds, wait_seconds FROM alert_response_times WHERE alert_id = $1', [alertId]))[0]!

  it('a press held 30 min in a gateway outbox, answered at once: seconds for the operator, 30 min for the person', async () => {
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-held', { seq: 1, type: 'press' }, Date.now() - 30 * MINUTE)] })
    await act(press!.alertId!, 'acknowledge')
    await act(press!.alertId!, 'resolve', { outcome: 'real' })

    const kpis = await perAlert(press!.alertId!)
    expect(kpis.ack_seconds).toBeLessThan(60)
    expect(kpis.resolve_seconds).toBeLessThan(60)
    expect(kpis.wait_seconds).toBeGreaterThanOrEqual(30 * 60)

    const hourly = async () => (await db.query<{ responded: number, ack: number, resolve: number, wait: number }>(`
      SELECT sum(responded)::int8 AS responded, sum(ack_seconds_sum) AS ack, sum(resolve_seconds_sum) AS resolve, sum(wait_seconds_sum) AS wait
      FROM alert_response_hourly WHERE zone = 'zone-held'`))[0]!
    const expectHourly = async () => {
      const h = await hourly()
      expect(h.responded).toBe(1)
      expect(h.ack).toBeCloseTo(kpis.ack_seconds, 3)
      expect(h.resolve).toBeCloseTo(kpis.resolve_seconds!, 3)
      expect(h.wait).toBeCloseTo(kpis.wait_seconds, 3)
    }
    await expectHourly()
    if (backend.timescale) {
      await db.query("CALL refresh_continuous_aggregate('alert_response_hourly', NULL, NULL)")
      await expectHourly()
    }

    const { body } = await fx.call('GET', '/v1/stats/response-times?zone=zone-held')
    expect(body).toEqual([expect.objectContaining({ alerts: 1, responded: 1, resolvedByOperator: 1 })])
    expect(body[0].ackSecondsAvg).toBeLessThan(60)
    expect(body[0].resolveSecondsAvg).toBeLessThan(60)
    expect(body[0].waitSecondsAvg).toBeGreaterThanOrEqual(30 * 60)
    // The window is on the raise: the alert is in the last minute, though pressed 30 min ago.
    const since = new Date(Date.now() - MINUTE).toISOString()
    expect((await fx.call('GET', `/v1/stats/response-times?zone=zone-held&from=${since}`)).body).toHaveLength(1)
  })

  it('an acknowledged alert keeps its time to acknowledge when an earlier press arrives late', async () => {
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-late', { seq: 11, type: 'press' }, Date.now())] })
    const alertId = press!.alertId!
    await act(alertId, 'acknowledge')
    const before = await perAlert(alertId)
    const [raisedBefore] = await db.query<{ raised_at: Date, opened_at: Date }>('SELECT raised_at, opened_at FROM alerts WHERE id = $1', [alertId])

    // The press before it, held 10 min in another gateway's outbox, joins the alert.
    const [late] = await fx.ingest({ events: [gatewayEvent('btn-late', { seq: 10, type: 'press' }, Date.now() - 10 * MINUTE, 'gw-other')] })
    expect(late!.alertId).toBe(alertId)
    const [after] = await db.query<{ raised_at: Date, opened_at: Date }>('SELECT raised_at, opened_at FROM alerts WHERE id = $1', [alertId])
    expect(after!.opened_at.getTime()).toBeLessThan(raisedBefore!.opened_at.getTime() - 9 * MINUTE) // moved back: the person waited longer
    expect(after!.raised_at).toEqual(raisedBefore!.raised_at) // never moved

    const now = await perAlert(alertId)
    expect(now.ack_seconds).toBeCloseTo(before.ack_seconds, 3)
    expect(now.wait_seconds).toBeGreaterThanOrEqual(before.wait_seconds + 9 * 60)
  })

  it('every transition row of an alert carries its raised_at, the opening one written with the alert included', async () => {
    const rows = await db.query<{ alert_id: string, same: boolean }>(`
      SELECT t.alert_id, t.raised_at = a.raised_at AS same FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id
      WHERE a.zone IN ('zone-held', 'zone-late') ORDER BY t.id`)
    expect(rows.length).toBeGreaterThanOrEqual(5) // held: open, acknowledged, resolved; late: open, acknowledged
    expect(rows.every((r) => r.same)).toBe(true)
  })
})
