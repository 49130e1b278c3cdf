/**
 * Late rows reach the hourly continuous aggregates (review 51, cagg-late): a gateway's outbox has
 * no age limit, so a press or a heartbeat can arrive days late. The refresh policies, set at
 * every start by applyStoragePolicies, reach back over the whole audit trail (never dropped) and
 * over the events within their retention, less a margin (a refresh over dropped chunks would
 * erase their summaries). Real clock, TimescaleDB build of PGlite; the policies are run by hand
 * (`CALL run_job`), as the background worker would run them every 15 minutes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../server/db/database.js'
import { applyStoragePolicies, refreshStartHours } from '../../server/db/timescale.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { loadDashboards } from './grafana/provisioning.js'
import { runPanel } from './grafana/run.js'
import { openTimescaleDatabase } from './sim/timescale.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
let db: Database
let fx: Fixture
let now: number

beforeAll(async () => {
  db = await openTimescaleDatabase()
  fx = await buildFixture(db)
  await fx.app.services.gatewayWatch.stop()
  await fx.app.services.escalator.stop()
  for (const id of ['btn-0', 'btn-1', 'btn-2', 'btn-3']) await fx.provision(id, { zone: 'z-late' })
  await fx.provision('btn-beat', { zone: 'z-beat' })
  now = Date.now()
}, 300_000)

afterAll(async () => {
  await fx?.app.close()
  await db?.close()
})

async function runRefreshPolicies (): Promise<void> {
  const jobs = await db.query<{ job_id: number }>(
    "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY job_id")
  for (const j of jobs) await db.exec(`CALL run_job(${j.job_id})`)
}

async function policyStarts (): Promise<Record<string, unknown>> {
  // The jobs view names a continuous aggregate's policy by the aggregate.
  const rows = await db.query<{ view: string, config: { start_offset: unknown } }>(`
    SELECT hypertable_name AS view, config FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'`)
  return Object.fromEntries(rows.map((r) => [r.view, r.config.start_offset]))
}

async function openedInZone (): Promise<{ aggregate: number, panel: number, table: number }> {
  const [aggregate] = await db.query<{ n: number }>("SELECT COALESCE(sum(opened), 0)::int AS n FROM alerts_hourly WHERE zone = 'z-late'")
  const [table] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM alerts WHERE zone = 'z-late'")
  const operations = loadDashboards().find((d) => d.model.uid === 'sos-operations')!.model
  const [result] = await runPanel(db, operations, /^(Emergency alerts|Alerts) per hour, by zone/,
    { from: new Date(now - 10 * DAY), to: new Date(now + 60_000) }, { zone: ['z-late'] })
  return { aggregate: aggregate!.n, panel: result!.rows.reduce((s, r) => s + Number(r.value), 0), table: table!.n }
}

describe('refresh windows', () => {
  it('reach over all of the trail, and over the events within their retention less a margin', () => {
    expect(refreshStartHours('alert_transitions', 30)).toBeNull()
    expect(refreshStartHours('events', 0)).toBeNull()
    expect(refreshStartHours('events', 30)).toBe(29 * 24)
    expect(refreshStartHours('events', 1)).toBe(12)
  })

  it('are set again at each start, following the retention setting', async () => {
    await applyStoragePolicies(db, { compressAfterDays: 7, retentionDays: 30 })
    expect(await policyStarts()).toEqual({ alerts_hourly: null, alert_response_hourly: null, device_health_hourly: '29 days' })
    await applyStoragePolicies(db, { compressAfterDays: 7, retentionDays: 0 })
    expect(await policyStarts()).toEqual({ alerts_hourly: null, alert_response_hourly: null, device_health_hourly: null })
    await applyStoragePolicies(db, { compressAfterDays: 7, retentionDays: 365 })
    expect(await policyStarts()).toMatchObject({ device_health_hourly: '364 days' })
  })
})

describe('late rows in the hourly aggregates', () => {
  it('a press 3 h late counts at the next policy run; one 8 days late too', async () => {
    await applyStoragePolicies(db, { compressAfterDays: 7, retentionDays: 30 })
    await fx.ingest({ events: [gatewayEvent('btn-1', { seq: 1, type: 'press' }, now - 5 * HOUR)] })
    await fx.ingest({ events: [gatewayEvent('btn-0', { seq: 1, type: 'press' }, now - 1.5 * HOUR)] })
    await runRefreshPolicies()
    expect(await openedInZone()).toEqual({ aggregate: 2, panel: 2, table: 2 })

    // Held 3 h in a gateway's outbox: below the watermark, it waits for the next run (up to 15 min).
    await fx.ingest({ events: [gatewayEvent('btn-2', { seq: 1, type: 'press' }, now - 3 * HOUR)] })
    await runRefreshPolicies()
    expect(await openedInZone()).toEqual({ aggregate: 3, panel: 3, table: 3 })

    // Held 8 days (a gateway cut off for over a week): beyond the 7 days the policies covered.
    await fx.ingest({ events: [gatewayEvent('btn-3', { seq: 1, type: 'press' }, now - 8 * DAY)] })
    await runRefreshPolicies()
    expect(await openedInZone()).toEqual({ aggregate: 4, panel: 4, table: 4 })
  })

  it('a heartbeat 8 days late counts in device health (within the 30-day retention)', async () => {
    await fx.ingest({ events: [gatewayEvent('btn-beat', { seq: 1, type: 'heartbeat' }, now - HOUR * 2)] })
    await runRefreshPolicies()
    await fx.ingest({ events: [gatewayEvent('btn-beat', { seq: 2, type: 'heartbeat' }, now - 8 * DAY)] })
    await runRefreshPolicies()
    const [row] = await db.query<{ n: number }>("SELECT COALESCE(sum(heartbeats), 0)::int AS n FROM device_health_hourly WHERE device_id = 'btn-beat'")
    expect(row!.n).toBe(2)
  })
})
