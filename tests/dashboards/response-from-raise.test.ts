/**
 * The Response dashboard times operators from when an alert reached the server, and keeps the
 * person's wait from the press beside it, clearly named (review 51, z-held and z-late); its
 * escalation panel reads each escalation's level column (z-esc). Played through the server's
 * real API on the simulated clock, on TimescaleDB, within one UTC day (yesterday 01:00 to 02:00):
 * - z-held: a press its gateway held 30 min, acknowledged 30 s after it arrived, resolved 100 s later;
 * - z-late: a press acknowledged in 30 s, then an earlier press of the same device (held 10 min in
 *   another gateway's outbox) joins the acknowledged alert;
 * - z-esc: nobody answers and the escalator, down meanwhile, catches up from level 0 to 4 in one pass.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { loadDashboards } from './grafana/provisioning.js'
import { runPanel } from './grafana/run.js'
import type { TimeRange } from './grafana/macros.js'
import { installSimClock, type SimClock } from './sim/clock.js'
import { openTimescaleDatabase } from './sim/timescale.js'

const response = loadDashboards().find((d) => d.model.uid === 'sos-response')!.model
let db: Database
let fx: Fixture
let clock: SimClock
let operator: string
let range: TimeRange
const alerts = new Map<string, string>()
const at = (t: number) => new Date(range.from.getTime() + t * 1000)

async function press (t: number, device: string, seq: number, opts: { receivedT?: number, gateway?: string, ref?: string } = {}) {
  await clock.set(at(t))
  const [result] = await fx.ingest({ events: [gatewayEvent(device, { seq, boot: 'b1', type: 'press' }, at(opts.receivedT ?? t).getTime(), opts.gateway)] })
  if (opts.ref) alerts.set(opts.ref, result!.alertId!)
}

async function act (t: number, ref: string, action: 'acknowledge' | 'resolve') {
  await clock.set(at(t))
  const { status, body } = await fx.call('POST', `/v1/alerts/${alerts.get(ref)}/${action}`, action === 'resolve' ? { outcome: 'real' } : {}, operator)
  if (status >= 300) throw new Error(`${action} ${ref}: ${status} ${JSON.stringify(body)}`)
}

const rows = async (title: string | RegExp, zone: string) => (await runPanel(db, response, title, range, { zone: [zone] }))[0]!.rows
function series (found: Array<Record<string, unknown>>): Record<string, number[]> {
  const out: Record<string, number[]> = {}
  for (const r of found) (out[String(r.metric)] ??= []).push(Number(r.value))
  return out
}

beforeAll(async () => {
  const day = new Date(Date.now() - 86_400_000)
  const start = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 1))
  range = { from: start, to: new Date(start.getTime() + 3_600_000) }
  db = await openTimescaleDatabase()
  clock = await installSimClock(db, start)
  fx = await buildFixture(db, { settings: { escalateAfterMs: 60_000 } })
  await fx.app.services.gatewayWatch.stop()
  await fx.app.services.escalator.stop()
  operator = await fx.tokenFor('operator')
  for (const zone of ['z-held', 'z-late', 'z-esc']) await fx.provision(`btn-${zone.slice(2)}`, { zone })

  await press(2000, 'btn-held', 1, { receivedT: 200, ref: 'held' })
  await act(2030, 'held', 'acknowledge')
  await act(2130, 'held', 'resolve')

  await press(2200, 'btn-late', 11, { ref: 'late' })
  await act(2230, 'late', 'acknowledge')
  await press(2300, 'btn-late', 10, { receivedT: 1600, gateway: 'gw-other' })
  await act(2500, 'late', 'resolve')

  await press(2600, 'btn-esc', 1, { ref: 'esc' })
  await clock.set(at(2605))
  await fx.app.services.escalator.check()
  await clock.set(at(2850))
  await fx.app.services.escalator.check()
  await act(2860, 'esc', 'acknowledge')
  await act(2900, 'esc', 'resolve')
  await clock.set(range.to)
  await db.exec("CALL refresh_continuous_aggregate('alert_response_hourly', NULL, NULL)")
}, 300_000)

afterAll(async () => {
  await fx?.app.close()
  await db?.close()
  vi.useRealTimers()
})

describe('operators are timed from the raise', () => {
  it('a press held 30 min and answered in 30 s: 30 s to acknowledge, 130 s to resolve; the person waited 30.5 min', async () => {
    const [ack] = await rows(/^Time to acknowledge, by zone/, 'z-held')
    expect(ack).toMatchObject({ answered: 1, slowest: 30 })
    const [resolve] = await rows(/^Time to resolve, by zone/, 'z-held')
    expect(resolve).toMatchObject({ resolved: 1, slowest: 130 })
    const means = series(await rows(/^Mean time to acknowledge and resolve/, 'z-held'))
    expect(means).toMatchObject({
      'panic mean time to acknowledge': [30],
      'panic mean time to resolve': [130],
      'panic mean person\'s wait from the press': [1830]
    })
  })

  it('an earlier press arriving late does not change the acknowledged alert\'s 30 s', async () => {
    const [ack] = await rows(/^Time to acknowledge, by zone/, 'z-late')
    expect(ack).toMatchObject({ answered: 1, slowest: 30 })
    const means = series(await rows(/^Mean time to acknowledge and resolve/, 'z-late'))
    expect(means).toMatchObject({
      'panic mean time to acknowledge': [30],
      'panic mean time to resolve': [300],
      'panic mean person\'s wait from the press': [630]
    })
  })
})

describe('escalations per hour read the level column', () => {
  it('a catch-up from level 0 to 4 counts 4, whatever the note says', async () => {
    // The note is for people: its words may change (or be translated) without changing a count.
    await db.query("UPDATE alert_transitions SET note = 'escalated' WHERE alert_id = $1 AND from_state = 'open' AND to_state = 'open'", [alerts.get('esc')])
    const levels = (await rows(/^Escalations per hour/, 'z-esc')).reduce((n, r) => n + Number(r.value), 0)
    expect(levels).toBe(4)
  })
})
