/**
 * Gateways whose clocks are off (no NTP, a drifting RTC): what they stamp is kept as they
 * stamped it, but the server never lets it hold back an alarm, let a cancel through late, or
 * make a device look offline. (Escalation: escalation.test.ts.) Runs on embedded PGlite, and on
 * PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

describe.each(databaseBackends.filter((b) => !b.timescale))('gateway clocks on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, { settings: { cancelWindowMs: 30_000 } })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const alertOf = async (id: string) => (await fx.call('GET', `/v1/alerts/${id}`)).body

  it('measures the cancel window on the clock that stamped the press, however fast the gateway runs and however late both arrive', async () => {
    await fx.provision('shop-fast', { kind: 'counter', pin: '1357' })
    // A gateway five minutes fast; the press and a cancel 5 s after it: cancelled.
    const fast = Date.now() + 5 * 60_000
    const [press] = await fx.ingest({ events: [gatewayEvent('shop-fast', { seq: 1, type: 'press' }, fast)] })
    const [cancel] = await fx.ingest({ events: [gatewayEvent('shop-fast', { seq: 2, type: 'cancel', pin: '1357' }, fast + 5000)] })
    expect(cancel).toMatchObject({ alertId: press!.alertId, alertState: 'cancelled' })

    // The same gateway, a cancel 60 s after its press (a hold-up victim made to cancel once
    // the 30 s window had passed), both arriving together after an outage: refused.
    const later = fast + 120_000
    const [press2, late] = await fx.ingest({ events: [
      gatewayEvent('shop-fast', { seq: 3, type: 'press' }, later),
      gatewayEvent('shop-fast', { seq: 4, type: 'cancel', pin: '1357' }, later + 60_000)
    ] })
    expect(late).toMatchObject({ ackState: 'rejected' })
    expect(late!.reason).toMatch(/cancel window/)
    expect((await alertOf(press2!.alertId!)).state).toBe('open')
  })

  it('shows a device online when it is heard now through a gateway whose clock runs ten minutes slow', async () => {
    await fx.provision('btn-slow-clock')
    await fx.ingest({ events: [gatewayEvent('btn-slow-clock', { seq: 1, type: 'heartbeat' }, Date.now() - 600_000, 'gw-slow')] })
    const { body } = await fx.call('GET', '/v1/devices/btn-slow-clock')
    expect(body.online, 'online judged by the gateway\'s clock').toBe(true)
    // What the gateway stamped is still what it says last seen means.
    expect(Date.parse(body.lastSeenAt)).toBeLessThan(Date.now() - 500_000)
  })

  it('never opens a device_offline alert in the future when the gateway\'s clock runs fast', async () => {
    await fx.provision('btn-fast-offline')
    await fx.ingest({ presence: [{ deviceId: 'btn-fast-offline', gatewayId: 'gw-fast', state: 'offline', at: Date.now() + 5 * 60_000, reason: 'will' }] })
    const [alert] = (await fx.call('GET', '/v1/alerts?kind=device_offline&deviceId=btn-fast-offline')).body
    expect(Date.parse(alert.openedAt)).toBeLessThanOrEqual(Date.now())
  })
})
