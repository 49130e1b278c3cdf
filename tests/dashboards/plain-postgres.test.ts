/**
 * The server runs on plain PostgreSQL too (DATABASE_URL without TimescaleDB; the hourly
 * aggregates are then plain views of the same names and columns, migration 3), so Grafana must
 * work there: every panel and alert-rule query, expanded as the provisioned datasource makes
 * Grafana expand it, runs without TimescaleDB. 15 of 37 did not (a hard-coded time_bucket in five
 * panels, and `timescaledb: true` turning every $__timeGroup into time_bucket).
 * Runs on embedded PGlite (PostgreSQL without TimescaleDB), and on a PostgreSQL database of its
 * own when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { loadAlertGroups, loadDashboards } from './grafana/provisioning.js'
import { evaluateRule, runDashboard, runPanel, type PanelResult } from './grafana/run.js'
import type { TimeRange } from './grafana/macros.js'

const MINUTE = 60_000
const dashboards = loadDashboards().map((d) => d.model)

describe.each(databaseBackends.filter((b) => !b.timescale))('Grafana on $name, without TimescaleDB', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let range: TimeRange
  const rows = async (uid: string, title: string, selection: Record<string, string[]> = {}) =>
    (await runPanel(fx.db, dashboards.find((d) => d.uid === uid)!, title, range, selection))[0]!.rows
  const sum = (found: Array<Record<string, unknown>>, metric?: string) =>
    found.filter((r) => metric === undefined || r.metric === metric).reduce((n, r) => n + Number(r.value), 0)

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
    await fx.app.services.gatewayWatch.stop()
    await fx.app.services.escalator.stop()
    const operator = await fx.tokenFor('operator')
    const now = Date.now()
    range = { from: new Date(now - 2 * 60 * MINUTE), to: new Date(now + MINUTE) }
    await fx.provision('btn-pg-1', { zone: 'zone-pg' })
    await fx.provision('btn-pg-2', { zone: 'zone-pg' })
    await fx.provision('kiosk-pg', { zone: 'zone-pg2', kind: 'kiosk' })
    const at = (minutesAgo: number) => now - minutesAgo * MINUTE
    const pressed = gatewayEvent('btn-pg-1', { seq: 3, type: 'press' }, at(3))
    const results = await fx.ingest({
      events: [
        gatewayEvent('btn-pg-1', { seq: 1, type: 'heartbeat', battery: 40 }, at(60)),
        gatewayEvent('btn-pg-1', { seq: 2, type: 'heartbeat', battery: 39 }, at(50)),
        pressed,
        gatewayEvent('btn-pg-2', { seq: 1, type: 'battery_low', battery: 8 }, at(2)),
        gatewayEvent('kiosk-pg', { seq: 1, type: 'hold' }, at(1)),
        gatewayEvent('kiosk-pg', { seq: 2, type: 'report', report: { category: 'noise', text: 'Karaoke after 23:00' } }, at(1))
      ],
      deadLetters: [{ gatewayId: 'gw-test', topic: 'sos/v1/nobody/event', reason: 'payload is not JSON', payload: 'e30=', receivedAt: at(5) }]
    })
    const press = results.find((r) => r.eventId === pressed.eventId)!
    for (const [action, body] of [['acknowledge', {}], ['resolve', { outcome: 'real', note: 'handled' }]] as const) {
      const { status } = await fx.call('POST', `/v1/alerts/${press.alertId}/${action}`, body, operator)
      expect(status).toBeLessThan(300)
    }
    await fx.call('POST', '/v1/announcements', { zone: 'zone-pg2', title: 'Notice', body: 'Water off tonight', lang: 'en', expiresAt: new Date(now + 86_400_000).toISOString() }, operator)
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('every panel query runs, for every zone and kind, for one zone, and for every alert kind', async () => {
    const failures: string[] = []
    let ran = 0
    for (const dashboard of dashboards) {
      const selections: Array<Record<string, string[]>> = [{}, { zone: ['zone-pg'], kind: ['button'] }, { alert_kind: ['$__all'] }]
      for (const selection of selections) {
        // runDashboard stops at the first failing query: run panel by panel to list them all.
        for (const panel of dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.targets?.length)) {
          try {
            const results: PanelResult[] = await runPanel(fx.db, dashboard, panel.title, range, selection)
            ran += results.length
          } catch (err) {
            failures.push((err as Error).message.split('\n')[0]!)
          }
        }
      }
    }
    expect(failures).toEqual([])
    expect(ran).toBe(3 * dashboards.flatMap((d) => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => p.targets ?? [])).length)
    // And the whole dashboard at once, as Grafana loads it.
    for (const dashboard of dashboards) await runDashboard(fx.db, dashboard, range)
  })

  it('every alert rule query runs', async () => {
    for (const rule of loadAlertGroups().flatMap((g) => g.rules)) await evaluateRule(fx.db, rule, new Date())
  })

  it('the panels that read the hourly aggregates (plain views here) and bucket by time show the traffic', async () => {
    expect(sum(await rows('sos-operations', 'Emergency alerts per hour, by zone'))).toBe(2)
    expect(sum(await rows('sos-operations', 'Alerts over time, by kind'))).toBe(3)
    expect(sum(await rows('sos-response', 'Time to acknowledge per day (p50, p90, n)'), 'panic answered (n)')).toBe(1)
    expect(sum(await rows('sos-response', 'Mean time to acknowledge and resolve, per day'), 'panic answered (n)')).toBe(1)
    expect(sum(await rows('sos-response', 'False-alarm rate per day, with resolved and cancelled'), 'panic resolved (n)')).toBe(1)
    // btn-pg-1: 10 minutes between its heartbeats, then 47 until its press.
    expect(sum(await rows('sos-fleet-health', 'Heartbeat gaps per hour, by zone'))).toBe(2)
    expect(Math.min(...(await rows('sos-fleet-health', 'Lowest battery per hour, by zone')).map((r) => Number(r.value)))).toBe(8)
    expect(sum(await rows('sos-fleet-health', 'Rejected messages, by reason'))).toBe(1)
    expect(sum(await rows('sos-community', 'Resident reports over time, by category'))).toBe(1)
  })
})
