/**
 * A closed alert's wait stops when it was closed, however it was closed: a device cancel too.
 * Response › "Escalated alerts" counted an alert escalated and then cancelled by its device as
 * still waiting, its wait growing for ever. Runs on embedded PGlite, and on PostgreSQL when
 * TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { allPanels, loadDashboards, panelQueries } from './grafana/provisioning.js'
import { renderSql, resolveVariables } from './grafana/run.js'

describe.each(databaseBackends.filter((b) => !b.timescale))('the wait of a closed alert on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, { settings: { cancelWindowMs: 30_000, escalateAfterMs: 60_000 } })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('Escalated alerts: an alert escalated, then cancelled on its device, waited until the cancel', async () => {
    await fx.provision('shop-escalated-cancelled', { kind: 'counter', pin: '4321' })
    // A gateway 70 s slow that does not say when it sends: the press is dated 70 s back and escalates.
    const pressAt = Date.now() - 70_000
    const [press] = await fx.ingest({ events: [gatewayEvent('shop-escalated-cancelled', { seq: 1, type: 'press' }, pressAt)] })
    await fx.app.services.escalator.check()
    // The owner cancels 10 s after pressing, inside the window.
    const [cancel] = await fx.ingest({ events: [gatewayEvent('shop-escalated-cancelled', { seq: 2, type: 'cancel', pin: '4321' }, pressAt + 10_000)] })
    expect(cancel).toMatchObject({ alertState: 'cancelled' })

    const { model: dashboard } = loadDashboards().find((d) => d.model.uid === 'sos-response')!
    const panel = allPanels(dashboard).find((p) => p.title === 'Escalated alerts')!
    const range = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) }
    const sql = renderSql(panel.targets![0]!.rawSql!, await resolveVariables(fx.db, dashboard, range), range, 60_000)
    const [row] = await fx.db.query<{ state: string, escalations: number, waited: number | string }>(sql)
    const [alert] = await fx.db.query<{ until_cancelled: number }>(
      'SELECT extract(epoch FROM cancelled_at - opened_at)::float8 AS until_cancelled FROM alerts WHERE id = $1', [press!.alertId])
    expect(row).toMatchObject({ state: 'cancelled', escalations: 1 })
    expect(Number(row!.waited)).toBeCloseTo(alert!.until_cancelled, 3)
  })
})

describe('the wait of an alert, on every dashboard', () => {
  it('no panel takes now() as the end of an alert\'s wait without every time an alert can close at', () => {
    const waits = loadDashboards().flatMap(({ model }) => panelQueries(model).flatMap(({ panel, sql }) =>
      [...sql.matchAll(/COALESCE\(([^()]*), now\(\)\)/g)].filter(([, times]) => /\ba\.\w+_at\b/.test(times!)).map(([, times]) => ({ panel: panel.title, times }))))
    expect(waits.length).toBeGreaterThan(0)
    for (const wait of waits) expect(wait.times, wait.panel).toMatch(/resolved_at.*cancelled_at|cancelled_at.*resolved_at/)
  })
})
