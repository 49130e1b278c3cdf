/**
 * Response KPIs measure operators (DESIGN §4; migration 6). An alert the system closes by itself
 * (a device back online, heard again after its gateway was lost) has no time to resolve, and no
 * time to acknowledge unless an operator answered it first: in the per-alert view, in the hourly
 * aggregate (its means are sum / their own count), and in /v1/stats/response-times. Checked on
 * an upgraded store's history (migration 6 must correct what is already there, also once the
 * TimescaleDB aggregate is materialized) and on alerts handled through the API afterwards, on
 * every engine of the storage contract.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { migrate } from '../../server/db/migrate.js'
import { migrations } from '../../server/db/migrations.js'
import { recordTransition } from '../../server/alerts/transitions.js'
import type { Database } from '../../server/db/database.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
/** A month back: far outside the 7 days the TimescaleDB refresh policies of migrations 3 and 6 materialized. */
const month = Math.floor(Date.now() / HOUR) * HOUR - 30 * 24 * HOUR
/** A whole hour three hours back, for the alerts handled through the API. */
const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR

/**
 * The history, as version 5 stored it: opened in one hour, all resolved in the next. Two
 * `device_offline` alerts closed by the system (no outcome), one of them acknowledged first;
 * two panic alerts an operator resolved, one without acknowledging first.
 */
const HISTORY = [
  { id: 'h-auto', kind: 'device_offline', opened: 0, acknowledged: null, resolved: 110 * MINUTE, outcome: null, actor: 'gateway:gw-1', note: 'back online' },
  { id: 'h-acked', kind: 'device_offline', opened: 10 * MINUTE, acknowledged: 15 * MINUTE, resolved: 100 * MINUTE, outcome: null, actor: 'system:gateway-watch', note: 'heard again' },
  { id: 'h-panic', kind: 'panic', opened: 50 * MINUTE, acknowledged: 51 * MINUTE, resolved: 60 * MINUTE, outcome: 'real', actor: 'operator-1', note: null },
  { id: 'h-skipped', kind: 'panic', opened: 55 * MINUTE, acknowledged: null, resolved: 65 * MINUTE, outcome: 'false_alarm', actor: 'operator-1', note: null }
] as const

/** What each history alert must count: seconds to the first operator response and to an operator's resolve. */
const HISTORY_KPIS = [
  { alert_id: 'h-acked', ack_seconds: 300, resolve_seconds: null },
  { alert_id: 'h-auto', ack_seconds: null, resolve_seconds: null },
  { alert_id: 'h-panic', ack_seconds: 60, resolve_seconds: 600 },
  { alert_id: 'h-skipped', ack_seconds: 600, resolve_seconds: 600 }
]

/** Per kind, the columns the aggregate had before (corrected values), then its new counts. */
const HISTORY_HOURLY = [
  { kind: 'device_offline', resolved: 2, ack_seconds_sum: 300, ack_seconds_max: 300, resolve_seconds_sum: null, resolve_seconds_max: null },
  { kind: 'panic', resolved: 2, ack_seconds_sum: 660, ack_seconds_max: 600, resolve_seconds_sum: 1200, resolve_seconds_max: 600 }
]
const HISTORY_HOURLY_COUNTS = [
  { kind: 'device_offline', responded: 1, resolved_by_operator: 0 },
  { kind: 'panic', responded: 2, resolved_by_operator: 2 }
]

describe.each(databaseBackends)('response KPIs on $name', (backend) => {
  let fx: Fixture
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    db = opened.db
    dispose = opened.dispose
    await migrateUpTo(db, 5)
    await seedHistory(db)
    fx = await buildFixture(db) // applies the later migrations: the upgrade
    for (const id of ['live-auto', 'live-acked', 'live-panic']) await fx.provision(id, { zone: 'zone-live' })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  // The columns that existed before migration 6 are asked apart from the new ones, so that
  // without it these tests fail on wrong values rather than on missing columns.
  const perAlert = (zone: string) => db.query(`
    SELECT alert_id, ack_seconds, resolve_seconds FROM alert_response_times WHERE zone = $1 ORDER BY alert_id`, [zone])
  const resolvedByOperator = (zone: string) => db.query<{ alert_id: string, resolved_by_operator: boolean | null }>(`
    SELECT alert_id, resolved_by_operator FROM alert_response_times WHERE zone = $1 ORDER BY alert_id`, [zone])
  const hourly = (zone: string) => db.query(`
    SELECT kind, sum(resolved)::int8 AS resolved, sum(ack_seconds_sum) AS ack_seconds_sum, max(ack_seconds_max) AS ack_seconds_max,
      sum(resolve_seconds_sum) AS resolve_seconds_sum, max(resolve_seconds_max) AS resolve_seconds_max
    FROM alert_response_hourly WHERE zone = $1 GROUP BY kind ORDER BY kind`, [zone])
  const hourlyCounts = (zone: string) => db.query(`
    SELECT kind, sum(responded)::int8 AS responded, sum(resolved_by_operator)::int8 AS resolved_by_operator
    FROM alert_response_hourly WHERE zone = $1 GROUP BY kind ORDER BY kind`, [zone])
  const stats = async (zone: string) => {
    const { status, body } = await fx.call('GET', `/v1/stats/response-times?zone=${zone}`)
    expect(status).toBe(200)
    return body as Array<Record<string, unknown>>
  }

  it('upgraded history: an alert closed by the system is no response, an acknowledge before it still is (alert_response_times)', async () => {
    expect(await perAlert('zone-old')).toEqual(HISTORY_KPIS)
    expect(await resolvedByOperator('zone-old')).toEqual([
      { alert_id: 'h-acked', resolved_by_operator: false },
      { alert_id: 'h-auto', resolved_by_operator: false },
      { alert_id: 'h-panic', resolved_by_operator: true },
      { alert_id: 'h-skipped', resolved_by_operator: true }
    ])
  })

  it('upgraded history: the hourly aggregate keeps every resolution and counts the populations of its sums', async () => {
    expect(await hourly('zone-old')).toEqual(HISTORY_HOURLY)
    expect(await hourlyCounts('zone-old')).toEqual(HISTORY_HOURLY_COUNTS)
  })

  if (backend.timescale) it('upgraded history: the recreated continuous aggregate has its refresh policy and materializes the history too', async () => {
    const jobs = await db.query<{ job_id: number, proc_name: string, config: Record<string, unknown> }>(`
      SELECT job_id, proc_name, config FROM timescaledb_information.jobs
      WHERE hypertable_name = 'alert_response_hourly' OR proc_name = 'refresh_alert_response_history' ORDER BY proc_name`)
    expect(jobs.map((j) => j.proc_name)).toEqual(['policy_refresh_continuous_aggregate', 'refresh_alert_response_history'])
    const [policy, history] = jobs as [typeof jobs[0], typeof jobs[0]]
    // Migration 14 recreated it, with a policy over the whole history (the trail is never dropped).
    expect(policy.config).toMatchObject({ start_offset: null, end_offset: '01:00:00' })
    // The policy first, then migration 6's one-off: either way the month-old hour is there.
    await db.query(`CALL run_job(${policy.job_id})`)
    await db.query(`CALL run_job(${history.job_id})`)
    expect(await hourly('zone-old')).toEqual(HISTORY_HOURLY)
    expect(await hourlyCounts('zone-old')).toEqual(HISTORY_HOURLY_COUNTS)
    const [after] = await db.query<{ scheduled: boolean }>('SELECT scheduled FROM timescaledb_information.jobs WHERE job_id = $1', [history.job_id])
    expect(after!.scheduled).toBe(false) // a one-off
  })

  it('upgraded history: /v1/stats/response-times counts operators only in responded, resolvedByOperator and the seconds', async () => {
    expect(await stats('zone-old')).toEqual([
      {
        zone: 'zone-old', kind: 'device_offline', alerts: 2, responded: 1, resolved: 2, resolvedByOperator: 0,
        ackSecondsAvg: 300, ackSecondsP50: 300, ackSecondsP90: 300, resolveSecondsAvg: null, resolveSecondsP50: null, resolveSecondsP90: null,
        // Stored before raised_at existed, with no opening transition: raised when opened.
        waitSecondsAvg: 300, waitSecondsP90: 300
      },
      {
        zone: 'zone-old', kind: 'panic', alerts: 2, responded: 2, resolved: 2, resolvedByOperator: 2,
        ackSecondsAvg: 330, ackSecondsP50: 330, ackSecondsP90: expect.closeTo(546, 6), resolveSecondsAvg: 600, resolveSecondsP50: 600, resolveSecondsP90: 600,
        waitSecondsAvg: 330, waitSecondsP90: expect.closeTo(546, 6)
      }
    ])
  })

  it('through the API: back online counts nowhere; acknowledged then back online counts its acknowledge; an operator-resolved panic counts both', async () => {
    const presence = (deviceId: string, state: 'offline' | 'online', at: number) =>
      fx.ingest({ presence: [{ deviceId, gatewayId: 'gw-test', state, at, reason: state === 'online' ? 'connected' : 'will' }] })
    const offlineAlertOf = async (deviceId: string) => (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}&kind=device_offline`)).body[0].id as string
    const act = async (alertId: string, action: string, body: object = {}) => expect((await fx.call('POST', `/v1/alerts/${alertId}/${action}`, body)).status).toBe(200)

    await presence('live-auto', 'offline', base)
    await presence('live-auto', 'online', base + HOUR)
    await presence('live-acked', 'offline', base + 10 * MINUTE)
    await act(await offlineAlertOf('live-acked'), 'acknowledge')
    await presence('live-acked', 'online', base + HOUR)
    const [press] = await fx.ingest({ events: [gatewayEvent('live-panic', { seq: 1, type: 'press' }, base + 20 * MINUTE)] })
    await act(press!.alertId!, 'acknowledge')
    await act(press!.alertId!, 'resolve', { outcome: 'real' })

    // What happened, from the alerts themselves: seconds from the alert reaching the server (now;
    // the gateways' times are hours ago: migration 14) to the operator's acknowledge and to the
    // resolution (now).
    const alerts = await db.query<{ device_id: string, state: string, outcome: string | null, ack: number | null, resolve: number }>(`
      SELECT device_id, state, outcome, extract(epoch FROM acknowledged_at - raised_at)::float8 AS ack,
        extract(epoch FROM resolved_at - raised_at)::float8 AS resolve
      FROM alerts WHERE zone = 'zone-live' ORDER BY device_id`)
    expect(alerts.map(({ device_id, state, outcome }) => ({ device_id, state, outcome }))).toEqual([
      { device_id: 'live-acked', state: 'resolved', outcome: null },
      { device_id: 'live-auto', state: 'resolved', outcome: null },
      { device_id: 'live-panic', state: 'resolved', outcome: 'real' }
    ])
    const [acked, , panic] = alerts as [typeof alerts[0], typeof alerts[0], typeof alerts[0]]
    expect(acked.ack).toBeLessThan(60)
    expect(panic.resolve).toBeGreaterThanOrEqual(panic.ack!)

    const view = await db.query(`
      SELECT device_id, ack_seconds, resolve_seconds FROM alert_response_times WHERE zone = 'zone-live' ORDER BY device_id`)
    expect(view).toEqual([
      { device_id: 'live-acked', ack_seconds: expect.closeTo(acked.ack!, 3), resolve_seconds: null },
      { device_id: 'live-auto', ack_seconds: null, resolve_seconds: null },
      { device_id: 'live-panic', ack_seconds: expect.closeTo(panic.ack!, 3), resolve_seconds: expect.closeTo(panic.resolve, 3) }
    ])
    expect((await resolvedByOperator('zone-live')).map((r) => r.resolved_by_operator).sort()).toEqual([false, false, true])

    const expectLiveHourly = async () => {
      expect(await hourly('zone-live')).toEqual([
        { kind: 'device_offline', resolved: 2, ack_seconds_sum: expect.closeTo(acked.ack!, 3), ack_seconds_max: expect.closeTo(acked.ack!, 3), resolve_seconds_sum: null, resolve_seconds_max: null },
        { kind: 'panic', resolved: 1, ack_seconds_sum: expect.closeTo(panic.ack!, 3), ack_seconds_max: expect.closeTo(panic.ack!, 3), resolve_seconds_sum: expect.closeTo(panic.resolve, 3), resolve_seconds_max: expect.closeTo(panic.resolve, 3) }
      ])
      expect(await hourlyCounts('zone-live')).toEqual([
        { kind: 'device_offline', responded: 1, resolved_by_operator: 0 },
        { kind: 'panic', responded: 1, resolved_by_operator: 1 }
      ])
    }
    await expectLiveHourly()
    if (backend.timescale) {
      // The same from the materialization (the newest hour included).
      await db.query("CALL refresh_continuous_aggregate('alert_response_hourly', NULL, NULL)")
      await expectLiveHourly()
    }

    expect(await stats('zone-live')).toEqual([
      expect.objectContaining({ kind: 'device_offline', alerts: 2, responded: 1, resolved: 2, resolvedByOperator: 0, ackSecondsAvg: expect.closeTo(acked.ack!, 3), resolveSecondsAvg: null, resolveSecondsP90: null }),
      expect.objectContaining({ kind: 'panic', alerts: 1, responded: 1, resolved: 1, resolvedByOperator: 1, ackSecondsAvg: expect.closeTo(panic.ack!, 3), resolveSecondsAvg: expect.closeTo(panic.resolve, 3) })
    ])
  })
})

/** The real runner on the migrations shipped up to `version`: a store as that version left it. */
async function migrateUpTo (db: Database, version: number): Promise<void> {
  const cut = migrations.findIndex((m) => m.version > version)
  if (cut < 0) throw new Error(`no migration after version ${version}`)
  const later = migrations.splice(cut)
  try {
    await migrate(db)
  } finally {
    migrations.push(...later)
  }
}

/** HISTORY in a month-old store, written as version 5 did: the alert row, then its resolution in the trail. */
async function seedHistory (db: Database): Promise<void> {
  const at = (offset: number | null) => offset === null ? null : month + offset
  for (const h of HISTORY) {
    const device = `old-${h.id}`
    await db.query("INSERT INTO devices (id, kind, name, zone, secret_hash) VALUES ($1, 'button', $1, 'zone-old', 'unused')", [device])
    await db.query(`
      INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, acknowledged_at, resolved_at, outcome, last_press_at)
      VALUES ($1, $2, $3, 'resolved', 'zone-old', to_timestamp($4::float8 / 1000), to_timestamp($5::float8 / 1000),
              to_timestamp($6::float8 / 1000), $7, to_timestamp($4::float8 / 1000))`,
    [h.id, device, h.kind, at(h.opened), at(h.acknowledged), at(h.resolved), h.outcome])
    // Only the resolution row matters here: the response aggregate reads no other.
    await recordTransition(db, { alertId: h.id, from: h.acknowledged === null ? 'open' : 'acknowledged', to: 'resolved', actor: h.actor, note: h.note, atMs: at(h.resolved)! })
  }
}
