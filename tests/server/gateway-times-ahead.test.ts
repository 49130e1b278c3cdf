/**
 * Gateway times far ahead of the server's clock, or past what a JavaScript Date holds. One
 * heartbeat with `receivedAt: 9e15` set its device's last seen time past the year 275 760, and
 * from then on the device list, the event list, the dead letters and the reports answered 500;
 * one through a gateway whose clock said 2099 kept the device's last seen time there for good,
 * and a presence change so dated made every later one look stale. Runs on embedded PGlite, and
 * on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'

const YEAR_2099 = Date.UTC(2099, 0, 1)
/** Past the last instant a JavaScript Date holds (8.64e15), within PostgreSQL's range. */
const PAST_JS_DATES = 9e15
/** How a time past the last a Date holds is shown. */
const LAST_SHOWN = new Date(8.64e15).toISOString()

describe.each(databaseBackends.filter((b) => !b.timescale))('gateway times ahead of the server on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let operator: string

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
    operator = await fx.tokenFor('operator')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const post = (batch: object) => fx.call('POST', '/v1/ingest', { events: [], ...batch }, TOKENS.gateway)
  const device = async (id: string) => (await fx.call('GET', `/v1/devices/${id}`)).body
  const aheadCount = async (kind: string) => {
    const text = (await fx.app.inject({ url: '/metrics' })).body
    return [...text.matchAll(new RegExp(`^sos_ingest_gateway_times_ahead_total\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0)
  }

  it('refuses a batch with a time past what a JavaScript Date holds, with a clear 400, and every list still answers', async () => {
    await fx.provision('btn-far-1')
    const heartbeat = gatewayEvent('btn-far-1', { seq: 1, type: 'heartbeat' }, Date.now())
    for (const batch of [
      { events: [{ ...heartbeat, receivedAt: PAST_JS_DATES }] },
      { events: [{ ...heartbeat, receivedAt: 1e300 }] },
      { presence: [{ deviceId: 'btn-far-1', gatewayId: 'gw-test', state: 'offline', at: PAST_JS_DATES, reason: 'will' }] },
      { deadLetters: [{ deviceId: 'btn-far-1', gatewayId: 'gw-test', topic: 'sos/v1/btn-far-1/event', reason: 'not JSON', payload: 'eA==', receivedAt: PAST_JS_DATES }] },
      { events: [heartbeat], sentAt: PAST_JS_DATES }
    ]) {
      const { status, body } = await post(batch)
      expect(status, JSON.stringify(batch)).toBe(400)
      expect(body).toMatchObject({ statusCode: 400, code: expect.any(String), message: expect.stringMatching(/8640000000000000/) })
    }
    // Nothing of them was stored; a time at the very end of a Date's range is taken, and shown.
    expect((await fx.call('GET', '/v1/events?deviceId=btn-far-1', undefined, operator)).body).toEqual([])
    expect((await post({ events: [{ ...heartbeat, receivedAt: 8.64e15 }] })).status).toBe(200)
    for (const path of ['/v1/devices', '/v1/devices/btn-far-1', '/v1/events?limit=5', '/v1/dead-letters', '/v1/reports']) {
      expect((await fx.call('GET', path)).status, path).toBe(200)
    }
  })

  it('stores what a gateway whose clock says 2099 sends, but dates its device\'s last seen time, presence and reports by the server\'s clock, and says so', async () => {
    await fx.provision('btn-2099')
    await fx.provision('kiosk-2099', { kind: 'kiosk' })
    const before = { events: await aheadCount('event'), presence: await aheadCount('presence') }

    // Its heartbeat and a press: stored as stamped, the press's alert opened now.
    const results = await fx.ingest({ events: [
      gatewayEvent('btn-2099', { seq: 1, type: 'heartbeat' }, YEAR_2099, 'gw-2099'),
      gatewayEvent('btn-2099', { seq: 2, type: 'press' }, YEAR_2099 + 1000, 'gw-2099')
    ] })
    expect(results.map((r) => r.status)).toEqual(['stored', 'stored'])
    const { body: alert } = await fx.call('GET', `/v1/alerts/${results[1]!.alertId}`)
    expect(Date.parse(alert.openedAt)).toBeLessThanOrEqual(Date.now())
    const { body: events } = await fx.call('GET', '/v1/events?deviceId=btn-2099', undefined, operator)
    expect(events.map((e: any) => Date.parse(e.time)).sort()).toEqual([YEAR_2099, YEAR_2099 + 1000])
    const seen = Date.parse((await device('btn-2099')).lastSeenAt)
    expect(seen, 'last seen on the server\'s clock').toBeLessThanOrEqual(Date.now())
    expect(seen).toBeGreaterThan(Date.now() - 60_000)

    // The device moves to a gateway whose clock is right: its events move its last seen time on.
    const later = Date.now() + 1000
    await fx.ingest({ events: [gatewayEvent('btn-2099', { seq: 3, type: 'heartbeat' }, later, 'gw-right')] })
    expect(Date.parse((await device('btn-2099')).lastSeenAt)).toBe(later)

    // The 2099 gateway reports it gone and back at once, then, its clock put right, gone again:
    // each change is applied in turn, and the last raises its alert (before, the first two were
    // dated 2099, and the last was dropped as older: the device never reported offline).
    await fx.ingest({ presence: [
      { deviceId: 'btn-2099', gatewayId: 'gw-2099', state: 'offline', at: YEAR_2099, reason: 'will' },
      { deviceId: 'btn-2099', gatewayId: 'gw-2099', state: 'online', at: YEAR_2099 + 10, reason: 'connected' }
    ] })
    expect((await device('btn-2099')).online).toBe(true)
    expect((await fx.call('GET', '/v1/alerts?deviceId=btn-2099&kind=device_offline&state=open')).body, 'back online: resolved').toEqual([])
    await fx.ingest({ presence: [{ deviceId: 'btn-2099', gatewayId: 'gw-2099', state: 'offline', at: Date.now() + 2000, reason: 'heartbeat_missed' }] })
    expect((await device('btn-2099')).online).toBe(false)
    const offline = (await fx.call('GET', '/v1/alerts?deviceId=btn-2099&kind=device_offline&state=open')).body as any[]
    expect(offline).toHaveLength(1)

    // A kiosk's report through it is filed now, not in 2099.
    const [report] = await fx.ingest({ events: [gatewayEvent('kiosk-2099', { seq: 1, type: 'report', report: { category: 'noise', text: 'loud' } }, YEAR_2099, 'gw-2099')] })
    const { body: filed } = await fx.call('GET', `/v1/reports/${report!.ticketId}`)
    expect(Date.parse(filed.createdAt)).toBeLessThanOrEqual(Date.now())

    expect(await aheadCount('event') - before.events).toBe(3)
    expect(await aheadCount('presence') - before.presence).toBe(2)
  })

  it('puts a gateway in 2099 that says when it sent its batch on the server\'s clock by the measured offset', async () => {
    await fx.provision('btn-2099-sent')
    const held = 30_000
    // Sent now by its clock (2099), received 30 s before by the same clock: 30 s ago by ours.
    await fx.ingest({ events: [gatewayEvent('btn-2099-sent', { seq: 1, type: 'heartbeat' }, YEAR_2099 - held, 'gw-2099')], sentAt: YEAR_2099 })
    const seen = Date.parse((await device('btn-2099-sent')).lastSeenAt)
    expect(seen).toBeLessThanOrEqual(Date.now() - held + 1000)
    expect(seen).toBeGreaterThan(Date.now() - held - 60_000)
  })

  it('raises the alert of a press whose batch says it was sent in the year 33 658 (a gateway clock gone wild between receiving and sending)', async () => {
    await fx.provision('btn-wild-sent')
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-wild-sent', { seq: 1, type: 'press' }, Date.now(), 'gw-wild')], sentAt: 1e15 })
    expect(press).toMatchObject({ status: 'stored', alertId: expect.any(String) })
    // Dated by that offset, long ago: it escalates at once, the safe side.
    const { body: alert } = await fx.call('GET', `/v1/alerts/${press!.alertId}`)
    expect(Date.parse(alert.openedAt)).toBeLessThanOrEqual(Date.now())
  })

  it('shows every list whole when a row holds a time past what a JavaScript Date holds (stored before times were bounded)', async () => {
    await fx.provision('btn-beyond')
    await fx.provision('btn-infinite')
    await fx.provision('kiosk-beyond', { kind: 'kiosk' })
    const [report] = await fx.ingest({ events: [
      gatewayEvent('btn-beyond', { seq: 1, type: 'heartbeat' }, Date.now()),
      gatewayEvent('kiosk-beyond', { seq: 1, type: 'report', report: { category: 'noise', text: 'loud' } }, Date.now())
    ] }).then((r) => r.slice(1))
    // As a heartbeat with `receivedAt: 9e15` left them (PostgreSQL holds it, a Date does not).
    await fx.db.query('UPDATE devices SET last_seen_at = to_timestamp($1 / 1000.0) WHERE id = $2', [PAST_JS_DATES, 'btn-beyond'])
    await fx.db.query("UPDATE devices SET last_seen_at = 'infinity' WHERE id = 'btn-infinite'")
    await fx.db.query('UPDATE events SET time = to_timestamp($1 / 1000.0) WHERE device_id = $2', [PAST_JS_DATES, 'btn-beyond'])
    await fx.db.query('UPDATE reports SET created_at = to_timestamp($1 / 1000.0) WHERE id = $2', [PAST_JS_DATES, report!.ticketId])
    await fx.db.query(`INSERT INTO dead_letters (gateway_id, device_id, topic, reason, payload, received_at)
      VALUES ('gw-test', 'btn-beyond', 'sos/v1/btn-beyond/event', 'not JSON', 'eA==', to_timestamp($1 / 1000.0))`, [PAST_JS_DATES])

    const devices = await fx.call('GET', '/v1/devices?limit=500')
    expect(devices.status).toBe(200)
    expect(devices.body.find((d: any) => d.id === 'btn-beyond').lastSeenAt).toBe(LAST_SHOWN)
    expect(devices.body.find((d: any) => d.id === 'btn-infinite').lastSeenAt).toBe(LAST_SHOWN)
    expect(devices.body.find((d: any) => d.id === 'btn-2099')).toBeDefined()
    expect((await fx.call('GET', '/v1/devices/btn-beyond')).body.lastSeenAt).toBe(LAST_SHOWN)
    const events = await fx.call('GET', '/v1/events?limit=500', undefined, operator)
    expect(events.status).toBe(200)
    expect(events.body.find((e: any) => e.deviceId === 'btn-beyond')).toMatchObject({ time: LAST_SHOWN })
    const letters = await fx.call('GET', '/v1/dead-letters?deviceId=btn-beyond')
    expect(letters).toMatchObject({ status: 200, body: [{ receivedAt: LAST_SHOWN }] })
    const reports = await fx.call('GET', '/v1/reports?limit=100')
    expect(reports.status).toBe(200)
    expect(reports.body.find((r: any) => r.id === report!.ticketId).createdAt).toBe(LAST_SHOWN)
  })

  it('puts back, on upgrade, a last seen time and a presence time a gateway dated far ahead before', async () => {
    await fx.provision('btn-upgraded')
    await fx.db.query(`UPDATE devices SET last_seen_at = to_timestamp($1 / 1000.0), heard_at = now() - INTERVAL '1 minute',
      presence_at = to_timestamp($1 / 1000.0), online = true, presence_recorded_at = now() - INTERVAL '2 minutes' WHERE id = 'btn-upgraded'`, [YEAR_2099])
    await fx.db.query('DELETE FROM schema_migrations WHERE version = 16')
    expect(await migrate(fx.db)).toEqual([16])
    const seen = Date.parse((await device('btn-upgraded')).lastSeenAt)
    expect(seen).toBeLessThan(Date.now() - 50_000)
    // The gateway's next change is newer than the one put back: applied.
    await fx.ingest({ presence: [{ deviceId: 'btn-upgraded', gatewayId: 'gw-test', state: 'offline', at: Date.now(), reason: 'will' }] })
    expect((await device('btn-upgraded')).online).toBe(false)
  })
})
