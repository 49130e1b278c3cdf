/**
 * The console's store (server/console/js/store.js, the module the page runs) against the real
 * server: what the operators' list holds when the API's list limit is not enough.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'

// The page's own module, plain JavaScript: loaded as the browser loads it.
const storeModule: string = '../../server/console/js/store.js'

describe('console store', () => {
  let fx: Fixture
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('keeps a waiting panic on the list when a wide outage opens more device_offline alerts than a list request returns', async () => {
    const { createStore, ALERT_PAGE } = await import(storeModule)
    await fx.provision('btn-store-1')
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-store-1', { seq: 1, type: 'press' }, Date.now() - 60_000)] })
    // Then a district's gateway goes: more device_offline alerts than one page, all newer.
    // (Seeded in the database: provisioning a thousand devices through the API takes minutes.)
    const outage = (ALERT_PAGE ?? 1000) + 5
    await fx.db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash)
      SELECT 'btn-out-' || n, 'button', 'Outage ' || n, 'zone-b', 'x' FROM generate_series(1, $1) AS n`, [outage])
    await fx.db.query(`INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, last_press_at)
      SELECT 'off-' || n, 'btn-out-' || n, 'device_offline', 'open', 'zone-b', now(), now() FROM generate_series(1, $1) AS n`, [outage])

    const api = async (method: string, path: string, body?: unknown) => {
      const { status, body: answer } = await fx.call(method, path, body)
      if (status >= 400) throw new Error(`${method} ${path}: ${status}`)
      return answer
    }
    const store = createStore(api, () => {})
    await store.reload()
    expect(store.state.loadError).toBeNull()
    expect(store.state.alerts.has(press!.alertId), 'the panic fell off the operators\' list').toBe(true)
    // And the list is as full as one kind's page allows.
    expect(store.state.alerts.size).toBeGreaterThanOrEqual((ALERT_PAGE ?? 1000) + 1)
    // Every device is on the map and in the fleet, more than one page of them, on the periodic refresh too.
    expect(store.state.devices.size).toBe(outage + 1)
    store.state.devices.clear()
    await store.refreshDevices()
    expect(store.state.devices.size).toBe(outage + 1)
  })
})
