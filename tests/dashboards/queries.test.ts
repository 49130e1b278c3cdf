/**
 * Every panel query and every alert-rule query, expanded as Grafana expands them, runs on
 * TimescaleDB (the server's migrations: hypertables, continuous aggregates) after a simulated
 * hour of traffic through the server's real API; the panels show what the hour held.
 */
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildApp } from '../../server/app.js'
import type { Database } from '../../server/db/database.js'
import { loadAlertGroups, loadDashboards, type Dashboard } from './grafana/provisioning.js'
import { evaluateRule, runDashboard, type PanelResult } from './grafana/run.js'
import type { TimeRange } from './grafana/macros.js'
import { installSimClock } from './sim/clock.js'
import { simulateHour, type SimulationResult } from './sim/drive.js'
import { ANNOUNCEMENTS, DEAD_LETTERS, DEVICES, HOUR_S, INCIDENTS, OUTAGE, REPORTS, ZONES } from './sim/scenario.js'
import { openTimescaleDatabase } from './sim/timescale.js'

const ADMIN = 'admin-token-for-dashboard-tests'
const ESCALATE_AFTER_S = 60
const GATEWAY = 'gateway-token-for-dashboard-tests'
const dashboards = new Map(loadDashboards().map((d) => [d.model.uid, d.model]))
const dashboard = (uid: string): Dashboard => dashboards.get(uid)!

let db: Database
let app: FastifyInstance
let sim: SimulationResult
let range: TimeRange
const results = new Map<string, PanelResult[]>()

/** The ward's day (its time zone, as the dashboards count days) an incident's alert was raised on. */
const wardDay = (incident: { at: number }) =>
  new Intl.DateTimeFormat('en-CA', { timeZone: String(dashboard('sos-response').timezone) }).format(new Date(range.from.getTime() + incident.at * 1000))

/** Rows of a panel's first query under the default selection (every zone and device kind; Response: panic alerts). */
const rows = (uid: string, title: string, refId = 'A') => {
  const found = results.get(uid)!.find((r) => r.panel.title === title && r.refId === refId)
  if (!found) throw new Error(`no panel "${title}" in ${uid}`)
  return found.rows
}

beforeAll(async () => {
  // The hour ends now, so `now()` in a panel means the end of the simulated hour.
  const end = new Date(Math.floor(Date.now() / 1000) * 1000)
  const start = new Date(end.getTime() - HOUR_S * 1000)
  range = { from: start, to: end }
  db = await openTimescaleDatabase()
  const clock = await installSimClock(db, start)
  app = await buildApp({ db, staticTokens: [{ token: ADMIN, role: 'admin', name: 'admin' }, { token: GATEWAY, role: 'gateway', name: 'gateway' }], settings: { escalateAfterMs: ESCALATE_AFTER_S * 1000 } })
  sim = await simulateHour(app, clock, start, { admin: ADMIN, gateway: GATEWAY })
  for (const view of ['alerts_hourly', 'alert_response_hourly', 'device_health_hourly']) {
    await db.exec(`CALL refresh_continuous_aggregate('${view}', NULL, NULL)`)
  }
  for (const [uid, model] of dashboards) results.set(uid, await runDashboard(db, model, range))
}, 240_000)

afterAll(async () => {
  await app?.close()
  await db?.close()
  vi.useRealTimers()
})

describe('after a simulated hour on TimescaleDB', () => {
  it('the continuous aggregates hold materialized hours', async () => {
    for (const view of ['alerts_hourly', 'alert_response_hourly', 'device_health_hourly']) {
      const [row] = await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${view}`)
      expect(row!.n, view).toBeGreaterThan(0)
    }
    const [hyper] = await db.query<{ n: number }>("SELECT count(*) AS n FROM timescaledb_information.hypertables WHERE hypertable_name IN ('events', 'alert_transitions')")
    expect(hyper!.n).toBe(2)
  })

  it('every panel query runs for every zone and kind, for one zone and kind, and for two zones', async () => {
    const selections: Array<Record<string, string[]>> = [{}, { zone: ['ben-thanh'], kind: ['button'], alert_kind: ['$__all'] },
      { zone: ['da-kao', 'tan-dinh'], kind: ['counter', 'kiosk'], alert_kind: ['panic', 'tamper'] }]
    for (const model of dashboards.values()) {
      for (const selection of selections) await runDashboard(db, model, range, selection)
    }
    // The default selection ran in beforeAll; every query of every dashboard was run there.
    const total = [...dashboards.values()].flatMap((d) => d.panels.flatMap((p) => p.targets ?? [])).length
    expect([...results.values()].flat().length).toBe(total)
  })

  it('every panel of Operations, Response, Fleet health and Community returns rows', () => {
    for (const [uid, panelResults] of results) {
      for (const r of panelResults) expect(r.rows.length, `${uid} › ${r.panel.title} (${r.refId})`).toBeGreaterThan(0)
    }
  })

  it('Operations shows the alerts still open, the two waiting presses, and the latest alerts with press counts', () => {
    // Still open at the end: incidents never resolved nor cancelled (p9 dispatched, p10 and p11
    // open, b1 acknowledged), and the server's device_offline alert for each device of the outage.
    const unresolved = INCIDENTS.filter((i) => !i.operator.some((o) => o.action === 'resolve') && !i.cancels)
    const expected: Record<string, number> = { device_offline: OUTAGE.devices.length }
    for (const i of unresolved) {
      const kind = i.type === 'press' || i.type === 'hold' ? 'panic' : i.type
      expected[kind] = (expected[kind] ?? 0) + 1
    }
    const open = Object.fromEntries(rows('sos-operations', 'Open alerts now, by kind').map((r) => [r.kind, Number(r.open)]))
    expect(open).toEqual(expected)
    const waiting = rows('sos-operations', 'Panic alerts not yet acknowledged')[0]!
    expect(Number(waiting['unacknowledged panic alerts'])).toBe(2)
    expect(Number(waiting['longest wait'])).toBe(HOUR_S - INCIDENTS.find((i) => i.ref === 'p10')!.at)
    const latest = rows('sos-operations', 'Latest alerts')
    const p1 = latest.find((r) => r['alert id'] === sim.alerts.get('p1'))!
    expect(p1).toMatchObject({ state: 'resolved', presses: 3, outcome: 'real', 'device kind': 'button' })
    const cancelled = latest.find((r) => r['alert id'] === sim.alerts.get('c1'))!
    expect(cancelled.state).toBe('cancelled')
    const devices = rows('sos-operations', 'Devices and open alerts', 'A')
    expect(devices).toHaveLength(DEVICES.length)
    expect(devices.filter((d) => d.status === 'offline').map((d) => d.device).sort()).toEqual([...OUTAGE.devices].sort())
    expect(rows('sos-operations', 'Devices and open alerts', 'B')).toHaveLength(unresolved.length + OUTAGE.devices.length)
  })

  it('Response measures the operators as they acted on panic alerts (its default), drills and cancels left out', async () => {
    const panic = (i: typeof INCIDENTS[number]) => i.type === 'press' || i.type === 'hold'
    const drill = (i: typeof INCIDENTS[number]) => i.operator.some((o) => o.outcome === 'test')
    // What the scenario's operators decided on panic alerts, drills (outcome 'test') left out.
    const decided = INCIDENTS.filter(panic).flatMap((i) => i.operator.filter((o) => o.action === 'resolve' && o.outcome !== 'test').map((o) => o.outcome!))
    const expected: Record<string, number> = {}
    for (const o of decided) expected[`panic ${o}`] = (expected[`panic ${o}`] ?? 0) + 1
    const outcomes = Object.fromEntries(rows('sos-response', 'Outcomes').map((r) => [`${r['alert kind']} ${r.outcome}`, Number(r.alerts)]))
    expect(outcomes).toEqual(expected)
    const falseAlarms = decided.filter((o) => ['false_alarm', 'prank', 'accidental'].includes(o)).length
    const rates = rows('sos-response', 'False-alarm rate, and cancelled')
    expect(rates.map((r) => r['alert kind'])).toEqual(['panic'])
    expect(Number(rates[0]!['false-alarm rate'])).toBeCloseTo(falseAlarms / decided.length, 6)
    expect(Number(rates[0]!.resolved)).toBe(decided.length)
    expect(Number(rates[0]!.cancelled)).toBe(INCIDENTS.filter((i) => i.cancels).length)
    // Every first response to a panic alert in the scenario (drills apart): the percentiles lie within them.
    const answered = INCIDENTS.filter((i) => panic(i) && i.operator.length > 0 && !drill(i))
    const delays = answered.map((i) => i.operator[0]!.after)
    const series = rows('sos-response', 'Time to acknowledge per day (p50, p90, n)')
    const value = (metric: string) => series.filter((r) => r.metric === metric).map((r) => Number(r.value))
    // Per ward day of the press, in day order: the simulated hour ends now, and from 17:00 to
    // 18:00 UTC it takes in the ward's midnight (two days, the second with 0 answered).
    const counted = INCIDENTS.filter((i) => panic(i) && !drill(i) && !i.cancels)
    const days = [...new Set(counted.map(wardDay))].sort()
    const perDay = (which: (i: typeof INCIDENTS[number]) => boolean) => days.map((day) => counted.filter((i) => wardDay(i) === day && which(i)).length)
    expect(value('panic answered (n)')).toEqual(perDay((i) => i.operator.length > 0))
    expect(value('panic still waiting')).toEqual(perDay((i) => i.operator.length === 0))
    for (const p of [...value('panic p50'), ...value('panic p90')]) {
      expect(p).toBeGreaterThanOrEqual(Math.min(...delays))
      expect(p).toBeLessThanOrEqual(Math.max(...delays))
    }
    // A day's percentiles are shown from 5 answered alerts on.
    expect(value('panic p50')).toHaveLength(perDay((i) => i.operator.length > 0).filter((n) => n >= 5).length)
    expect(value('panic p50').length).toBeGreaterThan(0)
    // Escalated: panic alerts that waited ESCALATE_AFTER or longer for a first response.
    const waited = (i: typeof INCIDENTS[number]) => i.operator[0]?.after ?? HOUR_S - i.at
    const escalated = INCIDENTS.filter((i) => panic(i) && !i.cancels && waited(i) >= ESCALATE_AFTER_S)
    expect(escalated.filter(drill)).toHaveLength(1) // the scenario's drill escalated too
    const listed = rows('sos-response', 'Escalated alerts').map((r) => r['alert id'])
    expect(listed.sort()).toEqual(escalated.filter((i) => !drill(i)).map((i) => sim.alerts.get(i.ref)).sort())
    // Escalations per hour: every level reached, the drill's apart; summed, the alerts' levels.
    const levels = async (alertIds: string[]) => Number((await db.query<{ n: number }>(
      'SELECT COALESCE(sum(escalation_level), 0) AS n FROM alerts WHERE id = ANY($1::text[])', [alertIds]))[0]!.n)
    const drillLevels = await levels(escalated.filter(drill).map((i) => sim.alerts.get(i.ref)!))
    expect(drillLevels).toBeGreaterThan(0)
    const perHour = rows('sos-response', 'Escalations per hour (levels reached)').reduce((sum, r) => sum + Number(r.value), 0)
    expect(perHour).toBe(await levels([...sim.alerts.values()]) - drillLevels)
    const daily = rows('sos-response', 'Mean time to acknowledge and resolve, per day')
    expect(daily.some((r) => r.metric === 'panic mean time to acknowledge' && Number(r.value) > 0)).toBe(true)
    expect(new Set(daily.map((r) => String(r.metric).split(' ')[0]))).toEqual(new Set(['panic']))
  })

  it('Fleet health sees the outage zone, the weak batteries, the gaps, the refused publishes and the misuse', () => {
    const presence = rows('sos-fleet-health', 'Online and offline now')[0]!
    expect(Number(presence.offline)).toBe(OUTAGE.devices.length)
    expect(Number(presence.online)).toBe(DEVICES.length - OUTAGE.devices.length)
    const silent = rows('sos-fleet-health', 'Devices not seen within their supervision interval').map((r) => r.device)
    expect(silent.sort()).toEqual([...OUTAGE.devices].sort())
    expect(Number(rows('sos-fleet-health', 'Lowest batteries now')[0]!.battery)).toBeLessThan(20)
    const gaps = rows('sos-fleet-health', 'Devices with the most heartbeat gaps').map((r) => r.device)
    expect(gaps).toEqual(expect.arrayContaining(['btn-da-kao-2', 'btn-ben-nghe-3']))
    const rejected = rows('sos-fleet-health', 'Rejected messages: reasons and devices')
    expect(rejected.reduce((n, r) => n + Number(r.messages), 0)).toBe(DEAD_LETTERS.length)
    const misuse = Object.fromEntries(rows('sos-fleet-health', 'Devices with repeated misuse').map((r) => [r.device, r]))
    const count = (device: string, column: string) => Number(misuse[device]?.[column])
    expect([count('btn-ben-thanh-2', 'pranks'), count('btn-ben-thanh-2', 'accidental')]).toEqual([2, 1])
    expect([count('shop-ben-thanh', 'cancelled'), count('shop-ben-thanh', 'wrong PINs')]).toEqual([1, 1])
    expect(Object.keys(misuse).sort()).toEqual(['btn-ben-thanh-2', 'shop-ben-thanh'])
  })

  it('Community lists the reports by category, the open tickets and the announcements', () => {
    const tickets = rows('sos-community', 'Open report tickets').map((r) => r.ticket)
    const closed = REPORTS.filter((r) => 'closeAfter' in r).map((r) => sim.tickets.get(r.ref))
    expect(tickets).toHaveLength(REPORTS.length - closed.length)
    for (const t of closed) expect(tickets).not.toContain(t)
    expect(Number(rows('sos-community', 'Announcements sent')[0]!.announcements)).toBe(ANNOUNCEMENTS.length)
    const categories = new Set(rows('sos-community', 'Resident reports over time, by category').map((r) => r.metric))
    expect(categories).toEqual(new Set(REPORTS.map((r) => r.category)))
  })

  it('one zone selected: only that zone', async () => {
    const one = await runDashboard(db, dashboard('sos-operations'), range, { zone: ['ben-thanh'] })
    const latest = one.find((r) => r.panel.title === 'Latest alerts')!.rows
    expect(latest.length).toBeGreaterThan(0)
    expect(new Set(latest.map((r) => r.zone))).toEqual(new Set(['ben-thanh']))
    expect(ZONES).toContain('ben-thanh')
  })
})

describe('alert rules on the simulated hour', () => {
  const rules = loadAlertGroups().flatMap((g) => g.rules)
  const rule = (uid: string) => rules.find((r) => r.uid === uid)!

  it('a panic alert waiting more than 2 minutes fires; one waiting 1 minute does not', async () => {
    const { firing, rows } = await evaluateRule(db, rule('sos-panic-unacknowledged'), range.to)
    expect(rows).toHaveLength(2)
    expect(firing.map((f) => f.labels.alert_id)).toEqual([sim.alerts.get('p10')])
    expect(firing[0]!.labels).toMatchObject({ zone: 'ben-thanh', device: 'btn-ben-thanh-1' })
  })

  it('more than 3 devices offline fires for the outage zone only', async () => {
    const { firing } = await evaluateRule(db, rule('sos-zone-devices-offline'), range.to)
    expect(firing).toEqual([{ labels: { zone: OUTAGE.zone }, value: OUTAGE.devices.length }])
  })

  it('a gateway silent for more than 90 s with devices behind it fires; a live one, or one without devices, does not', async () => {
    const [live, gone] = OUTAGE.devices
    await db.query(`INSERT INTO gateways (id, last_contact_at) VALUES
      ('gw-live', now() - INTERVAL '20 seconds'), ('gw-gone', now() - INTERVAL '5 minutes'), ('gw-retired', now() - INTERVAL '1 day')`)
    await db.query("UPDATE devices SET gateway_id = CASE id WHEN $1 THEN 'gw-live' ELSE 'gw-gone' END WHERE id IN ($1, $2)", [live, gone])
    const { firing } = await evaluateRule(db, rule('sos-gateway-lost'), range.to)
    expect(firing.map((f) => f.labels)).toEqual([{ gateway: 'gw-gone' }])
    expect(firing[0]!.value).toBeGreaterThan(290)
  })
})
