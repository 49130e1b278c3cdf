/**
 * Dashboards say "online" as the API does: by when the server heard a device, on the database's
 * clock, not by the time its gateway stamped (a gateway running minutes slow made every device
 * behind it look offline in Grafana, and paged, while the API and the console showed them online).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'
import { loadAlertGroups, loadDashboards } from './grafana/provisioning.js'
import { evaluateRule, runDashboard, type PanelResult } from './grafana/run.js'
import { openTimescaleDatabase } from './sim/timescale.js'

const SLOW_MS = 3 * 60_000
const devices = ['btn-slow-1', 'btn-slow-2', 'btn-slow-3', 'btn-slow-4']

describe('a gateway whose clock runs three minutes slow', () => {
  let db: Database
  let fx: Fixture
  const results = new Map<string, PanelResult[]>()
  const rows = (uid: string, title: string, refId = 'A') => results.get(uid)!.find((r) => r.panel.title === title && r.refId === refId)!.rows

  beforeAll(async () => {
    db = await openTimescaleDatabase()
    fx = await buildFixture(db)
    for (const id of devices) await fx.provision(id, { zone: 'zone-slow' })
    // Heard just now, through a gateway whose clock says three minutes ago.
    await fx.ingest({ events: devices.map((id) => gatewayEvent(id, { seq: 1, type: 'heartbeat' }, Date.now() - SLOW_MS, 'gw-slow')) })
    const now = new Date()
    for (const { model } of loadDashboards()) results.set(model.uid, await runDashboard(db, model, { from: new Date(now.getTime() - 3_600_000), to: now }))
  }, 240_000)

  afterAll(async () => {
    await fx?.app.close()
    await db?.close()
  })

  it('the API shows them online', async () => {
    const { body } = await fx.call('GET', '/v1/devices?zone=zone-slow')
    expect(body.map((d: { online: boolean }) => d.online)).toEqual(devices.map(() => true))
  })

  it('so do the dashboards, and the offline rule does not fire', async () => {
    expect(rows('sos-fleet-health', 'Online and offline now')[0]).toMatchObject({ online: 4, offline: 0 })
    expect(rows('sos-operations', 'Devices offline now')[0]).toMatchObject({ offline: 0 })
    const statuses = rows('sos-operations', 'Devices and open alerts').map((r) => r.status)
    expect(statuses).toEqual(devices.map(() => 'online'))
    expect(rows('sos-fleet-health', 'Devices not seen within their supervision interval')).toEqual([])
    const rule = loadAlertGroups().flatMap((g) => g.rules).find((r) => r.uid === 'sos-zone-devices-offline')!
    expect((await evaluateRule(db, rule, new Date())).firing).toEqual([])
  })
})
