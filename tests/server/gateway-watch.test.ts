/**
 * Path supervision with a fake clock: a gateway that stops calling leaves its devices
 * unsupervised, so each of them not already reported offline gets a `device_offline` alert;
 * when the gateway calls again those alerts are resolved. A restarted server neither raises
 * nor resolves anything by itself. Runs on embedded PGlite, and on PostgreSQL when
 * TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import type { Database } from '../../server/db/database.js'
import { GATEWAY_ID_HEADER } from '../../protocol/index.js'
import { GATEWAY_WATCH_ACTOR } from '../../server/supervision/gateway-watch.js'

const plainBackends = databaseBackends.filter((b) => !b.timescale)
const LOST_AFTER = 90_000

describe.each(plainBackends)('gateway watch on $name', (backend) => {
  let fx: Fixture
  let db: Database
  let dispose: () => Promise<void>

  const start = async () => {
    fx = await buildFixture(db, { settings: { gatewayLostAfterMs: LOST_AFTER } })
  }

  beforeAll(async () => {
    // Only the watch's interval and the clock are fake; the database and inject are real.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const opened = await backend.open()
    dispose = opened.dispose
    db = opened.db
    await start()
  }, 180_000)

  afterAll(async () => {
    vi.useRealTimers()
    await fx?.app.close()
    await dispose?.()
  })

  /** A gateway's downlink long poll, answered at once: the call that keeps a gateway heard. */
  const poll = (gatewayId: string, token = TOKENS.gateway) => fx.app.inject({
    method: 'GET', url: '/v1/gateway/downlink?wait=0', headers: { authorization: `Bearer ${token}`, [GATEWAY_ID_HEADER]: gatewayId }
  })
  /** Moves the clock and lets the watch look (twice: a pass the interval started may be running). */
  const after = async (ms: number) => {
    await vi.advanceTimersByTimeAsync(ms)
    await fx.app.services.gatewayWatch.check()
    await fx.app.services.gatewayWatch.check()
  }
  const offlineAlert = async (deviceId: string) => {
    const { body } = await fx.call('GET', `/v1/alerts?kind=device_offline&deviceId=${deviceId}`)
    const [listed] = body as any[]
    return listed && (await fx.call('GET', `/v1/alerts/${listed.id}`)).body
  }
  const lostGauge = async () => {
    const { body } = await fx.app.inject({ method: 'GET', url: '/metrics' })
    return Number(/^sos_gateways_lost (\d+)$/m.exec(body)?.[1])
  }

  it('raises device_offline for every device of a gateway not heard from for GATEWAY_LOST_AFTER, once, and for no other', async () => {
    for (const id of ['a-1', 'a-2', 'a-gone', 'a-quiet', 'b-1']) await fx.provision(id)
    const now = Date.now()
    await fx.ingest({
      events: [
        gatewayEvent('a-1', { seq: 1, type: 'heartbeat' }, now, 'gw-a'),
        gatewayEvent('a-2', { seq: 1, type: 'heartbeat' }, now, 'gw-a'),
        gatewayEvent('a-gone', { seq: 1, type: 'heartbeat' }, now, 'gw-a'),
        gatewayEvent('a-quiet', { seq: 1, type: 'heartbeat' }, now, 'gw-a'),
        gatewayEvent('b-1', { seq: 1, type: 'heartbeat' }, now, 'gw-b')
      ],
      // a-quiet's gateway reported it offline itself: it has its own alert.
      presence: [{ deviceId: 'a-quiet', gatewayId: 'gw-a', state: 'offline', at: now + 1, reason: 'heartbeat_missed' }]
    })
    // A late event of a-1's, drained from another gateway's outbox: a-1 stays gw-a's.
    await fx.ingest({ events: [gatewayEvent('a-1', { seq: 0, type: 'heartbeat' }, now - 60_000, 'gw-b')] })
    expect(await fx.call('DELETE', '/v1/devices/a-gone')).toMatchObject({ status: 204 })
    const quietBefore = await offlineAlert('a-quiet')
    expect(quietBefore).toMatchObject({ state: 'open', pressCount: 1 })

    await after(60_000)
    expect((await poll('gw-b')).statusCode).toBe(200)
    // A gateway id claimed without a gateway token is not heard: the admin may not poll.
    expect((await poll('gw-a', TOKENS.admin)).statusCode).toBe(403)
    await after(LOST_AFTER - 60_000 - 1000)
    expect(await offlineAlert('a-1')).toBeUndefined()

    await after(1000)
    for (const id of ['a-1', 'a-2']) {
      const alert = await offlineAlert(id)
      expect(alert).toMatchObject({ kind: 'device_offline', state: 'open', pressCount: 1 })
      expect(alert.transitions).toEqual([expect.objectContaining({ to: 'open', actor: GATEWAY_WATCH_ACTOR, note: expect.stringMatching(/^gateway gw-a not heard from for 90 s/) })])
    }
    expect(await offlineAlert('b-1')).toBeUndefined()
    expect(await offlineAlert('a-gone')).toBeUndefined()
    expect(await offlineAlert('a-quiet')).toMatchObject({ id: quietBefore.id, pressCount: 1 })
    expect(fx.app.services.gatewayWatch.lostGateways()).toEqual(['gw-a'])
    expect(await lostGauge()).toBe(1)

    // Still lost a while later: nothing raised twice.
    await after(30_000)
    expect(await offlineAlert('a-1')).toMatchObject({ pressCount: 1 })
    expect((await fx.call('GET', '/v1/alerts?kind=device_offline&state=open')).body).toHaveLength(3)
  })

  it('resolves those alerts when the gateway calls again, except one whose gateway has since reported it offline itself', async () => {
    // While gw-a was away, a-2 really went: its gateway's report joins the watch's alert.
    await fx.ingest({ presence: [{ deviceId: 'a-2', gatewayId: 'gw-a', state: 'offline', at: Date.now(), reason: 'will' }] })
    expect((await poll('gw-a')).statusCode).toBe(200)
    await after(1000)

    const a1 = await offlineAlert('a-1')
    expect(a1.state).toBe('resolved')
    expect(a1.transitions.at(-1)).toMatchObject({ from: 'open', to: 'resolved', actor: GATEWAY_WATCH_ACTOR, note: 'gateway gw-a heard again' })
    expect(await offlineAlert('a-2')).toMatchObject({ state: 'open', pressCount: 2 })
    expect(await offlineAlert('a-quiet')).toMatchObject({ state: 'open' })
    expect(fx.app.services.gatewayWatch.lostGateways()).toEqual([])
    expect(await lostGauge()).toBe(0)
  })

  it('after a restart, gives a known gateway a full interval before counting it lost, and resolves nothing until it calls', async () => {
    // gw-b goes quiet and is lost; then the server restarts.
    await after(LOST_AFTER)
    const b1 = await offlineAlert('b-1')
    expect(b1).toMatchObject({ state: 'open', pressCount: 1 })
    await fx.app.close()
    await start()

    // Known from the devices table, not heard yet: neither raised again nor resolved.
    await after(LOST_AFTER - 1000)
    expect(await offlineAlert('b-1')).toMatchObject({ id: b1.id, state: 'open', pressCount: 1 })
    expect(fx.app.services.gatewayWatch.lostGateways()).toEqual([])
    await after(1000)
    expect(fx.app.services.gatewayWatch.lostGateways()).toEqual(expect.arrayContaining(['gw-b']))
    expect(await offlineAlert('b-1')).toMatchObject({ id: b1.id, state: 'open', pressCount: 1 })

    // The ids an older gateway's batches carry count as its calls.
    await fx.ingest({ events: [gatewayEvent('b-1', { seq: 2, type: 'heartbeat' }, Date.now(), 'gw-b')] })
    await after(1000)
    expect(await offlineAlert('b-1')).toMatchObject({ id: b1.id, state: 'resolved' })
  })
})
