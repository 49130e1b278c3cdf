/**
 * Fleet health answers for the zones selected, and its history keeps what happened (review 51):
 * - a refused publish from a client that is no registered device belongs to no zone: it showed
 *   under every zone selected; now only when the selection covers every device (All);
 * - a device revoked since vanished from the battery and heartbeat-gap history of the hours it
 *   reported; "now" panels still show the current fleet only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { loadDashboards, type Dashboard } from './grafana/provisioning.js'
import { runPanel } from './grafana/run.js'
import type { TimeRange } from './grafana/macros.js'
import { openTimescaleDatabase } from './sim/timescale.js'

const MINUTE = 60_000
let db: Database
let fx: Fixture
let range: TimeRange
const fleet: Dashboard = loadDashboards().find((d) => d.model.uid === 'sos-fleet-health')!.model

async function rows (title: string, selection: Record<string, string | string[]> = {}) {
  return (await runPanel(db, fleet, title, range, selection))[0]!.rows
}
const total = (found: Array<Record<string, unknown>>, column: string) => found.reduce((n, r) => n + Number(r[column]), 0)

beforeAll(async () => {
  const now = Date.now()
  range = { from: new Date(now - 2 * 60 * MINUTE), to: new Date(now + MINUTE) }
  db = await openTimescaleDatabase()
  fx = await buildFixture(db)
  await fx.app.services.gatewayWatch.stop()
  await fx.provision('btn-keep', { zone: 'zone-a' })
  await fx.provision('shop-keep', { zone: 'zone-a', kind: 'counter', pin: '4321' })
  await fx.provision('btn-gone', { zone: 'zone-a' })
  await fx.provision('btn-other', { zone: 'zone-b' })
  // An hour ago: btn-gone, its battery weak, misses heartbeats for 5 minutes; the others are fine.
  const heartbeat = (id: string, seq: number, minutesAgo: number, battery: number) =>
    gatewayEvent(id, { seq, type: 'heartbeat', battery }, now - minutesAgo * MINUTE)
  await fx.ingest({
    events: [heartbeat('btn-gone', 1, 60, 14), heartbeat('btn-gone', 2, 55, 13),
      heartbeat('btn-keep', 1, 60, 80), heartbeat('btn-keep', 2, 59, 80), heartbeat('shop-keep', 1, 60, 90), heartbeat('btn-other', 1, 60, 70)],
    deadLetters: [
      { deviceId: 'btn-other', gatewayId: 'gw-test', topic: 'sos/v1/btn-other/event', reason: 'payload is not JSON', payload: 'e30=', receivedAt: now - 30 * MINUTE },
      { gatewayId: 'gw-test', topic: 'sos/v1/intruder/event', reason: 'invalid event: type', payload: 'e30=', receivedAt: now - 20 * MINUTE },
      { deviceId: 'ghost-1', gatewayId: 'gw-test', topic: 'sos/v1/ghost-1/event', reason: 'payload too large', payload: 'e30=', receivedAt: now - 10 * MINUTE }
    ]
  })
  // Then it was taken down (stolen, replaced): revoked.
  const { status } = await fx.call('DELETE', '/v1/devices/btn-gone')
  expect(status).toBeLessThan(300)
}, 240_000)

afterAll(async () => {
  await fx?.app.close()
  await db?.close()
})

describe('rejected messages, by the zones selected', () => {
  it('one zone: only its devices\' refused publishes, none from clients of no zone', async () => {
    expect(await rows('Rejected messages: reasons and devices', { zone: ['zone-a'] })).toEqual([])
    expect(await rows('Rejected messages, by reason', { zone: ['zone-a'] })).toEqual([])
    const zoneB = await rows('Rejected messages: reasons and devices', { zone: ['zone-b'] })
    expect(zoneB.map((r) => r.device)).toEqual(['btn-other'])
    expect(total(await rows('Rejected messages, by reason', { zone: ['zone-b'] }), 'value')).toBe(1)
  })

  it('one device kind of every zone: no clients of no kind either', async () => {
    const buttons = await rows('Rejected messages: reasons and devices', { kind: ['button'] })
    expect(buttons.map((r) => r.device)).toEqual(['btn-other'])
  })

  it('every zone and kind (All, or each ticked): the unattributed ones too', async () => {
    const selections: Array<Record<string, string[]>> = [{}, { zone: ['zone-a', 'zone-b'] }]
    for (const selection of selections) {
      const all = await rows('Rejected messages: reasons and devices', selection)
      expect(all.map((r) => r.device).sort()).toEqual(['btn-other', 'ghost-1', 'unknown'])
      expect(total(await rows('Rejected messages, by reason', selection), 'value')).toBe(3)
    }
  })
})

describe('a device revoked since', () => {
  it('keeps its heartbeat gaps and weak battery in the history of the hours it reported', async () => {
    const gaps = await rows('Devices with the most heartbeat gaps', { zone: ['zone-a'] })
    expect(gaps.map((r) => r.device)).toEqual(['btn-gone'])
    expect(Number(gaps[0]!.gaps)).toBe(1)
    expect(total(await rows('Heartbeat gaps per hour, by zone', { zone: ['zone-a'] }), 'value')).toBe(1)
    const battery = await rows('Lowest battery per hour, by zone', { zone: ['zone-a'] })
    expect(Math.min(...battery.map((r) => Number(r.value)))).toBe(13)
  })

  it('is not in the current fleet', async () => {
    const now = await rows('Lowest batteries now', { zone: ['zone-a'] })
    expect(now.map((r) => String(r.device))).not.toContainEqual(expect.stringContaining('btn-gone'))
    expect(now).toHaveLength(2)
    const presence = await rows('Online and offline now', { zone: ['zone-a'] })
    expect(Number(presence[0]!.online) + Number(presence[0]!.offline)).toBe(2)
  })
})
