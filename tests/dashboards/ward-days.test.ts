/**
 * "Per day" panels count the ward's calendar days, not UTC days (review 63). Ho Chi Minh City is
 * UTC+7: on UTC days every alert from midnight to 07:00 local, the night shift's, landed on the
 * previous day's bar, and the console (which shows the ward's time) and Grafana disagreed about
 * what "yesterday" was. Played through the server's real API on the simulated clock, on
 * TimescaleDB, within one local day D: five panics at 05:00–05:20 local (the previous UTC day)
 * and five at 09:00–09:20 local, each acknowledged after 30 s and resolved as real after 90 s,
 * and an announcement at each of those times.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { loadDashboards, type Dashboard } from './grafana/provisioning.js'
import { runPanel } from './grafana/run.js'
import type { TimeRange } from './grafana/macros.js'
import { installSimClock, type SimClock } from './sim/clock.js'
import { openTimescaleDatabase } from './sim/timescale.js'

const WARD_UTC_OFFSET_MS = 7 * 3_600_000
const dashboards = loadDashboards().map((d) => d.model)
const byUid = (uid: string): Dashboard => dashboards.find((d) => d.uid === uid)!
let db: Database
let fx: Fixture
let clock: SimClock
let operator: string
/** Local midnight of day D, as an instant. */
let localMidnight: Date
let range: TimeRange
/** An instant `localHour` hours (local time) into day D. */
const local = (localHour: number) => new Date(localMidnight.getTime() + localHour * 3_600_000)

async function panicAnswered (device: string, start: Date) {
  await clock.set(start)
  const [result] = await fx.ingest({ events: [gatewayEvent(device, { seq: 1, boot: 'b1', type: 'press' }, start.getTime())] })
  const id = result!.alertId!
  await clock.set(new Date(start.getTime() + 30_000))
  expect((await fx.call('POST', `/v1/alerts/${id}/acknowledge`, {}, operator)).status).toBe(200)
  await clock.set(new Date(start.getTime() + 90_000))
  expect((await fx.call('POST', `/v1/alerts/${id}/resolve`, { outcome: 'real' }, operator)).status).toBe(200)
}

async function announce (at: Date) {
  await clock.set(at)
  const { status } = await fx.call('POST', '/v1/announcements', {
    zone: 'z-ward', title: 'Cắt nước', body: 'Khu phố 3', lang: 'vi', expiresAt: new Date(at.getTime() + 86_400_000).toISOString()
  }, operator)
  expect(status).toBe(201)
}

beforeAll(async () => {
  const d = new Date(Date.now() - 3 * 86_400_000)
  localMidnight = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - WARD_UTC_OFFSET_MS)
  range = { from: localMidnight, to: local(12) }
  db = await openTimescaleDatabase()
  clock = await installSimClock(db, localMidnight)
  fx = await buildFixture(db)
  await fx.app.services.gatewayWatch.stop()
  await fx.app.services.escalator.stop()
  operator = await fx.tokenFor('operator')
  await fx.provision('kiosk-ward', { zone: 'z-ward', kind: 'kiosk' })
  for (let i = 0; i < 10; i++) await fx.provision(`btn-ward-${i}`, { zone: 'z-ward' })
  for (let i = 0; i < 5; i++) await panicAnswered(`btn-ward-${i}`, local(5 + i / 12))
  await announce(local(5.5))
  for (let i = 5; i < 10; i++) await panicAnswered(`btn-ward-${i}`, local(9 + (i - 5) / 12))
  await announce(local(9.5))
  await clock.set(range.to)
  await db.exec("CALL refresh_continuous_aggregate('alert_response_hourly', NULL, NULL)")
  await db.exec("CALL refresh_continuous_aggregate('alerts_hourly', NULL, NULL)")
}, 300_000)

afterAll(async () => {
  await fx?.app.close()
  await db?.close()
  vi.useRealTimers()
})

/** The distinct day buckets of a panel's rows, and the value of each series in them. */
async function days (uid: string, title: string | RegExp): Promise<{ buckets: number[], series: Record<string, number[]> }> {
  const rows = (await runPanel(db, byUid(uid), title, range, { zone: ['z-ward'] }))[0]!.rows
  // `$__timeGroupAlias` gives epoch seconds, a `date_trunc` a timestamp.
  const msOf = (t: unknown) => typeof t === 'number' || typeof t === 'string' && /^\d+$/.test(t) ? Number(t) * 1000 : new Date(t as string | Date).getTime()
  const buckets = [...new Set(rows.map((r) => msOf(r.time)))]
  const series: Record<string, number[]> = {}
  for (const r of rows) (series[String(r.metric)] ??= []).push(Number(r.value))
  return { buckets, series }
}

describe('per-day panels count the ward\'s days', () => {
  it('time to acknowledge per day: the night shift\'s five and the morning\'s five are one day, from local midnight, with n = 10', async () => {
    const { buckets, series } = await days('sos-response', /^Time to acknowledge per day/)
    expect(buckets).toEqual([localMidnight.getTime()])
    expect(series).toMatchObject({ 'panic answered (n)': [10], 'panic p50': [30] })
  })

  it('time to resolve per day: one local day, n = 10', async () => {
    const { buckets, series } = await days('sos-response', /^Time to resolve per day/)
    expect(buckets).toEqual([localMidnight.getTime()])
    expect(series).toMatchObject({ 'panic resolved (n)': [10], 'panic p50': [90] })
  })

  it('mean times per day, summed from the hourly aggregate: one local day', async () => {
    const { buckets, series } = await days('sos-response', /^Mean time to acknowledge and resolve, per day/)
    expect(buckets).toEqual([localMidnight.getTime()])
    expect(series).toMatchObject({ 'panic answered (n)': [10], 'panic mean time to acknowledge': [30] })
  })

  it('false-alarm rate per day, summed from the hourly aggregate: one local day', async () => {
    const { buckets, series } = await days('sos-response', /^False-alarm rate per day/)
    expect(buckets).toEqual([localMidnight.getTime()])
    expect(series).toMatchObject({ 'panic resolved (n)': [10], 'panic false-alarm rate': [0] })
  })

  it('announcements per day: both in one local day', async () => {
    const { buckets, series } = await days('sos-community', /^Announcements per day/)
    expect(buckets).toEqual([localMidnight.getTime()])
    expect(series).toEqual({ 'z-ward': [2] })
  })

  it('the dashboards show the ward\'s time, whatever the zone of the browser', () => {
    for (const d of dashboards) expect(d.timezone, d.title).toBe('Asia/Ho_Chi_Minh')
  })

  it('a dashboard that counts days counts them in the zone it shows (one setting to change, in two places)', () => {
    for (const d of dashboards) {
      const tz = d.templating.list.find((v) => v.name === 'ward_tz')
      if (tz) expect(tz.query, d.title).toBe(d.timezone)
    }
  })
})
