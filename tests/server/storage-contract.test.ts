/**
 * The storage contract: one suite, every engine (embedded PGlite; PostgreSQL when
 * TEST_DATABASE_URL is set; the TimescaleDB build of PGlite). The same ingest and the same
 * dashboard queries must give the same answers everywhere; on TimescaleDB the time-series
 * layer (hypertables, continuous aggregates, compression, retention) must really exist and work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { migrate } from '../../server/db/migrate.js'
import { applyStoragePolicies } from '../../server/db/timescale.js'
import type { Database } from '../../server/db/database.js'
import { deviceGateway } from '../../server/db/migrations/005-device-gateway.js'
import { migrations } from '../../server/db/migrations.js'

const HOUR = 3_600_000
/** A whole hour, three hours back: inside every refresh window, far from the compression age. */
const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR

describe.each(databaseBackends)('storage contract on $name', (backend) => {
  let fx: Fixture
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    db = opened.db
    dispose = opened.dispose
    fx = await buildFixture(db)
    await fx.provision('btn-a')
    await fx.provision('btn-b', { zone: 'zone-b' })
    await fx.provision('btn-d')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('applies migrations once: starting again changes nothing', async () => {
    expect(await migrate(db)).toEqual([])
    const versions = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')
    // Every registered migration, numbered 1, 2, 3... with none left out (6: operator response KPIs).
    const registered = migrations.map((m) => m.version)
    expect(registered).toEqual(registered.map((_, i) => i + 1))
    expect(registered.length).toBeGreaterThanOrEqual(6)
    expect(versions.map((v) => v.version)).toEqual(registered)
    const { status, body } = await fx.call('GET', '/readyz', undefined, '')
    expect(status).toBe(200)
    expect(body.schemaVersion).toBe(registered.length)
  })

  it('knows each device\'s gateway from its newest event, and fills it in on upgrade (version 5)', async () => {
    await fx.provision('btn-gw')
    const gatewayOf = async () => (await db.query<{ gateway_id: string | null }>("SELECT gateway_id FROM devices WHERE id = 'btn-gw'"))[0]!.gateway_id
    await fx.ingest({ events: [gatewayEvent('btn-gw', { seq: 2, type: 'heartbeat' }, base + 60_000, 'gw-new')] })
    // A late event drained from the gateway it used before does not take it back.
    await fx.ingest({ events: [gatewayEvent('btn-gw', { seq: 1, type: 'heartbeat' }, base, 'gw-old')] })
    expect(await gatewayOf()).toBe('gw-new')
    // A device that leaves a gateway whose clock runs five minutes fast for one whose clock is
    // right: its events are older than its last seen, and news all the same.
    await fx.provision('btn-moved')
    const moved = async () => (await db.query<{ gateway_id: string, heard: boolean }>(
      "SELECT gateway_id, heard_at > now() - INTERVAL '1 minute' AS heard FROM devices WHERE id = 'btn-moved'"))[0]!
    await fx.ingest({ events: [gatewayEvent('btn-moved', { seq: 1, type: 'heartbeat' }, Date.now() + 300_000, 'gw-fast')] })
    await db.query("UPDATE devices SET heard_at = NULL WHERE id = 'btn-moved'")
    await fx.ingest({ events: [gatewayEvent('btn-moved', { seq: 2, type: 'heartbeat' }, Date.now(), 'gw-right')] })
    expect(await moved()).toEqual({ gateway_id: 'gw-right', heard: true })

    await db.query("UPDATE devices SET gateway_id = NULL WHERE id = 'btn-gw'")
    const fill = deviceGateway.sql!.split(';').map((s) => s.trim()).find((s) => s.startsWith('UPDATE'))!
    await db.query(fill)
    expect(await gatewayOf()).toBe('gw-new')
  })

  it('prunes event ids older than what the retention keeps, and only those', async () => {
    await db.query(`INSERT INTO event_ids (event_id, received_at) VALUES
      ('prune-test:old', now() - INTERVAL '40 days'), ('prune-test:kept', now() - INTERVAL '31 days')`)
    // What the TimescaleDB job runs every hour for a 30-day retention (30 + 2 days kept).
    await db.query(`CALL prune_event_ids(0, '{"keep": "32 days"}')`)
    const left = await db.query<{ event_id: string }>("SELECT event_id FROM event_ids WHERE event_id LIKE 'prune-test:%' ORDER BY event_id")
    expect(left.map((r) => r.event_id)).toEqual(['prune-test:kept'])
  })

  it('stores events once and keeps the gap since each device\'s previous event', async () => {
    const beats = [0, 60, 120, 300, 360].map((s, i) => gatewayEvent('btn-a', { seq: i + 1, type: 'heartbeat', battery: 90 - i }, base + s * 1000))
    const first = await fx.ingest({ events: beats })
    expect(first.map((r) => r.status)).toEqual(['stored', 'stored', 'stored', 'stored', 'stored'])
    const again = await fx.ingest({ events: beats })
    expect(again.every((r) => r.status === 'duplicate')).toBe(true)
    const rows = await db.query<{ seq: number, gap_ms: number | null }>("SELECT seq, gap_ms FROM events WHERE device_id = 'btn-a' ORDER BY seq")
    expect(rows).toEqual([
      { seq: 1, gap_ms: null }, { seq: 2, gap_ms: 60_000 }, { seq: 3, gap_ms: 60_000 }, { seq: 4, gap_ms: 180_000 }, { seq: 5, gap_ms: 60_000 }
    ])
  })

  it('counts heartbeats and gaps per device and hour', async () => {
    const rows = await db.query<{ heartbeats: number, gaps: number, max_gap_ms: number, min_battery: number }>(
      "SELECT heartbeats, gaps, max_gap_ms, min_battery FROM device_health_hourly WHERE device_id = 'btn-a' AND bucket = $1", [new Date(base)])
    expect(rows).toEqual([{ heartbeats: 5, gaps: 1, max_gap_ms: 180_000, min_battery: 86 }])
  })

  it('counts alerts per zone and kind, and response times without drills', async () => {
    // zone-a: a real alert (acknowledged, resolved) and a drill; zone-b: a false alarm resolved unacknowledged.
    const [a] = await fx.ingest({ events: [gatewayEvent('btn-a', { seq: 10, type: 'press' }, base + 600_000)] })
    const [b] = await fx.ingest({ events: [gatewayEvent('btn-b', { seq: 1, type: 'press' }, base + 900_000)] })
    const [d] = await fx.ingest({ events: [gatewayEvent('btn-d', { seq: 1, type: 'press' }, base + 1_200_000)] })
    expect((await fx.call('POST', `/v1/alerts/${a!.alertId}/acknowledge`)).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${a!.alertId}/resolve`, { outcome: 'real' })).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${b!.alertId}/resolve`, { outcome: 'false_alarm' })).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${d!.alertId}/acknowledge`)).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${d!.alertId}/resolve`, { outcome: 'test', note: 'monthly drill' })).status).toBe(200)
    await expectDashboardAnswers()
  })

  async function expectDashboardAnswers (): Promise<void> {
    const counts = await db.query(`SELECT zone, sum(opened)::int8 AS opened, sum(resolved)::int8 AS resolved,
        sum(real)::int8 AS real, sum(false_alarms)::int8 AS false_alarms
      FROM alerts_hourly WHERE kind = 'panic' GROUP BY zone ORDER BY zone`)
    expect(counts).toEqual([
      { zone: 'zone-a', opened: 2, resolved: 2, real: 1, false_alarms: 0 },
      { zone: 'zone-b', opened: 1, resolved: 1, real: 0, false_alarms: 1 }
    ])
    const hourly = await db.query<{ zone: string, resolved: number, responded: number, by_operator: number, ack: number, resolve: number }>(`
      SELECT zone, sum(resolved)::int8 AS resolved, sum(responded)::int8 AS responded, sum(resolved_by_operator)::int8 AS by_operator,
        sum(ack_seconds_sum) AS ack, sum(resolve_seconds_sum) AS resolve
      FROM alert_response_hourly GROUP BY zone ORDER BY zone`)
    const perAlert = await db.query<{ zone: string, n: number, responded: number, by_operator: number, ack: number, resolve: number, wait: number }>(`
      SELECT zone, count(*)::int8 AS n, count(ack_seconds)::int8 AS responded, count(resolve_seconds)::int8 AS by_operator,
        sum(ack_seconds) AS ack, sum(resolve_seconds) AS resolve, sum(wait_seconds) AS wait
      FROM alert_response_times GROUP BY zone ORDER BY zone`)
    // The drill is in neither; both paths agree on every count and every second (automatic
    // resolutions, each path leaving them out alike, are in tests/server/response-kpis.test.ts).
    expect(hourly.map((h) => [h.zone, h.resolved, h.responded, h.by_operator])).toEqual([['zone-a', 1, 1, 1], ['zone-b', 1, 1, 1]])
    expect(perAlert.map((p) => [p.zone, p.n, p.responded, p.by_operator])).toEqual([['zone-a', 1, 1, 1], ['zone-b', 1, 1, 1]])
    for (const [i, h] of hourly.entries()) {
      expect(h.ack).toBeCloseTo(perAlert[i]!.ack, 3)
      expect(h.resolve).toBeCloseTo(perAlert[i]!.resolve, 3)
    }
    // Pressed hours ago (the gateway's time), raised and handled now: operators are timed from
    // the raise (migration 14), the person's wait from the press; acknowledge before resolve.
    expect(perAlert[0]!.ack).toBeLessThan(60)
    expect(perAlert[0]!.wait).toBeGreaterThan(2 * 3600)
    expect(perAlert[0]!.resolve).toBeGreaterThanOrEqual(perAlert[0]!.ack)
    expect(perAlert[1]!.ack).toBeCloseTo(perAlert[1]!.resolve, 3)
  }

  if (backend.timescale) it('has the hypertables, continuous aggregates, compression and retention', async () => {
    await applyStoragePolicies(db, { compressAfterDays: 7, retentionDays: 30 })
    const hypertables = await db.query<{ hypertable_name: string, compression_enabled: boolean }>(
      'SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables ORDER BY hypertable_name')
    expect(hypertables).toEqual([
      { hypertable_name: 'alert_transitions', compression_enabled: false },
      { hypertable_name: 'events', compression_enabled: true }
    ])
    const aggregates = await db.query<{ view_name: string, hypertable_name: string }>(
      'SELECT view_name, hypertable_name FROM timescaledb_information.continuous_aggregates ORDER BY view_name')
    expect(aggregates).toEqual([
      { view_name: 'alert_response_hourly', hypertable_name: 'alert_transitions' },
      { view_name: 'alerts_hourly', hypertable_name: 'alert_transitions' },
      { view_name: 'device_health_hourly', hypertable_name: 'events' }
    ])
    const segmentBy = await db.query<{ attname: string }>(
      "SELECT attname FROM timescaledb_information.compression_settings WHERE hypertable_name = 'events' AND segmentby_column_index IS NOT NULL")
    expect(segmentBy).toEqual([{ attname: 'device_id' }])
    const jobs = await db.query<{ proc_name: string, hypertable_name: string, config: Record<string, unknown> }>(
      "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs WHERE job_id >= 1000 ORDER BY proc_name, hypertable_name")
    expect(jobs.map((j) => [j.proc_name, j.hypertable_name])).toEqual([
      ['policy_compression', 'events'],
      ['policy_refresh_continuous_aggregate', 'alert_response_hourly'],
      ['policy_refresh_continuous_aggregate', 'alerts_hourly'],
      ['policy_refresh_continuous_aggregate', 'device_health_hourly'],
      ['policy_retention', 'events'],
      ['prune_event_ids', null],
      // Migration 6's one-off: materializes the response aggregate's history once, then unschedules itself.
      ['refresh_alert_response_history', null]
    ])
    expect(jobs.find((j) => j.proc_name === 'policy_compression')!.config.compress_after).toBe('7 days')
    expect(jobs.find((j) => j.proc_name === 'policy_retention')!.config.drop_after).toBe('30 days')
    expect(jobs.find((j) => j.proc_name === 'prune_event_ids')!.config.keep).toBe('32 days')
  })

  if (backend.timescale) it('answers the same from materialized aggregates', async () => {
    for (const view of ['alerts_hourly', 'alert_response_hourly', 'device_health_hourly']) {
      await db.query(`CALL refresh_continuous_aggregate('${view}', NULL, NULL)`)
    }
    await expectDashboardAnswers()
  })

  if (backend.timescale) it('compresses old event chunks by device and drops those past retention', async () => {
    const day = 24 * HOUR
    await fx.ingest({ events: [
      gatewayEvent('btn-b', { seq: 100, type: 'heartbeat' }, Date.now() - 10 * day),
      gatewayEvent('btn-b', { seq: 101, type: 'heartbeat' }, Date.now() - 40 * day)
    ] })
    const job = async (proc: string) => (await db.query<{ job_id: number }>(
      "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = 'events'", [proc]))[0]!.job_id
    await db.query(`CALL run_job(${await job('policy_compression')})`)
    const compressed = await db.query<{ n: number }>(
      "SELECT count(*)::int8 AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'events' AND is_compressed")
    expect(compressed[0]!.n).toBeGreaterThan(0)
    // Compressed events stay readable through the API.
    const { body: stillThere } = await fx.call('GET', `/v1/events?deviceId=btn-b&to=${new Date(Date.now() - 5 * day).toISOString()}`)
    expect(stillThere.map((e: any) => e.seq).sort()).toEqual([100, 101])

    await db.query(`CALL run_job(${await job('policy_retention')})`)
    const { body: kept } = await fx.call('GET', `/v1/events?deviceId=btn-b&to=${new Date(Date.now() - 5 * day).toISOString()}`)
    expect(kept.map((e: any) => e.seq)).toEqual([100])
  })
})
