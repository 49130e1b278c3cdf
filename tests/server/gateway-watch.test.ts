/**
 * Path supervision, on a short interval (2 s) and the real clock (the watch reads the
 * database's): a gateway that stops calling leaves its devices unsupervised, so each of them
 * that is silent too and not already reported offline gets a `device_offline` alert, once per
 * outage; the alert is resolved when the device itself is heard again. Every server instance
 * sees the same contact; a server that was down gives gateways a full interval. Runs on
 * embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import pg from 'pg'
import { createTestDatabase, databaseBackends, testDatabaseUrl } from '../helpers/postgres.js'
import { openPostgres } from '../../server/db/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import type { Database, Queryable } from '../../server/db/database.js'
import { DownlinkQueue } from '../../server/downlink/queue.js'
import { Bus } from '../../server/bus.js'
import { GATEWAY_ID_HEADER } from '../../protocol/index.js'
import { GATEWAY_WATCH_ACTOR } from '../../server/supervision/gateway-watch.js'

const plainBackends = databaseBackends.filter((b) => !b.timescale)
const LOST_AFTER = 2000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(plainBackends)('gateway watch on $name', (backend) => {
  let fx: Fixture
  let db: Database
  let dispose: () => Promise<void>
  const heartbeat = (deviceId: string, seq: number, gatewayId: string, at = Date.now()) => gatewayEvent(deviceId, { seq, type: 'heartbeat' }, at, gatewayId)

  // The watch's own stall detection (half the interval by default) is set apart: a slow test
  // machine pausing for a second must not reset it. Its own test sets it back.
  const start = async (stallAfterMs = 60_000) => { fx = await buildFixture(db, { settings: { gatewayLostAfterMs: LOST_AFTER }, gatewayWatch: { stallAfterMs } }) }

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    db = opened.db
    await start()
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  /** A gateway's downlink long poll, answered at once: the call that keeps a gateway heard. */
  const poll = async (gatewayId: string, on = fx, token = TOKENS.gateway) => (await on.app.inject({
    method: 'GET', url: '/v1/gateway/downlink?wait=0', headers: { authorization: `Bearer ${token}`, [GATEWAY_ID_HEADER]: encodeURIComponent(gatewayId) }
  })).statusCode
  /** Waits `ms` while the named gateways keep calling (as live ones do). */
  const waitCalling = async (ms: number, gatewayIds: string[], on = fx) => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      for (const id of gatewayIds) expect(await poll(id, on)).toBe(200)
      await sleep(100)
    }
  }
  /** Lets the watch look (twice: a pass its interval started may be running). */
  const look = async (on = fx) => {
    await on.app.services.gatewayWatch.check()
    await on.app.services.gatewayWatch.check()
  }
  const offlineAlert = async (deviceId: string, state = '') => {
    const { body } = await fx.call('GET', `/v1/alerts?kind=device_offline&deviceId=${deviceId}${state ? `&state=${state}` : ''}`)
    const [listed] = body as any[]
    return listed && (await fx.call('GET', `/v1/alerts/${listed.id}`)).body
  }
  const lostGauge = async () => Number(/^sos_gateways_lost (\d+)$/m.exec((await fx.app.inject({ method: 'GET', url: '/metrics' })).body)?.[1])

  it('raises device_offline, once, for each silent device of a gateway not heard from for GATEWAY_LOST_AFTER, and for no other', async () => {
    for (const id of ['a-1', 'a-2', 'a-gone', 'a-quiet', 'a-flap', 'b-1', 'c-1']) await fx.provision(id)
    await fx.ingest({
      events: [heartbeat('a-1', 1, 'gw-a'), heartbeat('a-2', 1, 'gw-a'), heartbeat('a-gone', 1, 'gw-a'), heartbeat('a-quiet', 1, 'gw-a'), heartbeat('b-1', 1, 'gw-b'),
        // An older gateway that never names itself is not watched.
        heartbeat('c-1', 1, 'gw-c'), heartbeat('a-flap', 1, 'gw-a')],
      presence: [
        // a-quiet's gateway reported it offline itself: it has its own alert.
        { deviceId: 'a-quiet', gatewayId: 'gw-a', state: 'offline', at: Date.now() + 1, reason: 'heartbeat_missed' },
        // a-flap went and came back just before (its gateway's clock a little ahead): that
        // alert, closed, is not this outage's.
        { deviceId: 'a-flap', gatewayId: 'gw-a', state: 'offline', at: Date.now() + 5000, reason: 'will' },
        { deviceId: 'a-flap', gatewayId: 'gw-a', state: 'online', at: Date.now() + 5001, reason: 'connected' }
      ]
    })
    expect(await offlineAlert('a-flap')).toMatchObject({ state: 'resolved' })
    // A late event of a-1's, drained from another gateway's outbox: a-1 stays gw-a's.
    await fx.ingest({ events: [heartbeat('a-1', 0, 'gw-b', Date.now() - 180_000)] })
    expect(await fx.call('DELETE', '/v1/devices/a-gone')).toMatchObject({ status: 204 })
    const quiet = await offlineAlert('a-quiet')
    expect(quiet).toMatchObject({ state: 'open', pressCount: 1 })
    // An id the admin claims is not a gateway's word: refused, and not counted.
    expect(await poll('gw-c', fx, TOKENS.admin)).toBe(403)

    expect(await poll('gw-a')).toBe(200)
    await waitCalling(LOST_AFTER / 4, ['gw-b'])
    await look()
    expect(await offlineAlert('a-1')).toBeUndefined()
    await waitCalling(LOST_AFTER * 3 / 4 + 600, ['gw-b'])
    await look()

    for (const id of ['a-1', 'a-2', 'a-flap']) {
      const alert = await offlineAlert(id, 'open')
      expect(alert).toMatchObject({ kind: 'device_offline', state: 'open', pressCount: 1 })
      expect(alert.transitions).toEqual([expect.objectContaining({ to: 'open', actor: GATEWAY_WATCH_ACTOR, note: expect.stringMatching(/^gateway gw-a not heard from for \d+ s: /) })])
    }
    for (const id of ['b-1', 'c-1', 'a-gone']) expect(await offlineAlert(id), id).toBeUndefined()
    expect(await offlineAlert('a-quiet')).toMatchObject({ id: quiet.id, pressCount: 1 })
    expect(fx.app.services.gatewayWatch.lostGateways()).toEqual(['gw-a'])
    expect(await lostGauge()).toBe(1)

    // An operator closes a-2's alert while gw-a is still away: not raised again for this outage.
    const a2 = await offlineAlert('a-2')
    expect((await fx.call('POST', `/v1/alerts/${a2.id}/resolve`, { outcome: 'real', note: 'known outage' })).status).toBe(200)
    await waitCalling(600, ['gw-b'])
    await look()
    expect(await offlineAlert('a-1')).toMatchObject({ state: 'open', pressCount: 1 })
    expect((await fx.call('GET', '/v1/alerts?kind=device_offline&state=open')).body.map((a: any) => a.deviceId).sort()).toEqual(['a-1', 'a-flap', 'a-quiet'])
  })

  it('resolves such an alert when the device itself is heard again, not when its gateway merely calls', async () => {
    expect(await poll('gw-a')).toBe(200)
    expect(await poll('gw-b')).toBe(200)
    await look()
    expect(fx.app.services.gatewayWatch.lostGateways()).toEqual([])
    expect(await lostGauge()).toBe(0)
    expect(await offlineAlert('a-1')).toMatchObject({ state: 'open' })
    // Its gateway resends an event stored before the outage (the answer was lost), another
    // gateway drains an old one from its outbox: old news, both.
    expect(await fx.ingest({ events: [heartbeat('a-1', 1, 'gw-a')] })).toMatchObject([{ status: 'duplicate' }])
    expect(await fx.ingest({ events: [heartbeat('a-1', 50, 'gw-b', Date.now() - 300_000)] })).toMatchObject([{ status: 'stored' }])
    await look()
    expect(await offlineAlert('a-1')).toMatchObject({ state: 'open' })

    await fx.ingest({ events: [heartbeat('a-1', 2, 'gw-a')] })
    await look()
    const a1 = await offlineAlert('a-1')
    expect(a1.state).toBe('resolved')
    expect(a1.transitions.at(-1)).toMatchObject({ from: 'open', to: 'resolved', actor: GATEWAY_WATCH_ACTOR, note: 'heard again through gateway gw-a' })
    expect(await offlineAlert('a-quiet')).toMatchObject({ state: 'open' })
  })

  it('lists the gateways with their last call, whether lost, their devices and their outbox as they reported it', async () => {
    await fx.provision('h-1')
    const health = { gatewayId: 'gw-h', outboxDepth: 42, outboxFull: true, outboxOldestAgeMs: 1500 }
    const { statusCode } = await fx.app.inject({
      method: 'POST', url: '/v1/ingest', headers: { authorization: `Bearer ${TOKENS.gateway}`, [GATEWAY_ID_HEADER]: 'gw-h' },
      payload: { events: [heartbeat('h-1', 1, 'gw-h')], gateway: health }
    })
    expect(statusCode).toBe(200)
    const listed = async () => ((await fx.call('GET', '/v1/gateways', undefined, await fx.tokenFor('analyst'))).body as any[]).find((g) => g.id === 'gw-h')
    // Kept after the batch's answer: looked for until it is there.
    for (let i = 0; i < 50 && !(await listed())?.outbox; i++) await sleep(20)
    expect(await listed()).toMatchObject({ silent: false, lost: false, devices: 1, outbox: { depth: 42, full: true, oldestAgeMs: 1500 } })
    expect((await fx.call('GET', '/v1/gateways')).body.find((g: any) => g.id === 'gw-a')).toMatchObject({ lost: false, devices: 4 })
    // One that called once and has no devices: silent an hour on, retired rather than lost.
    expect(await poll('gw-old')).toBe(200)
    await db.query("UPDATE gateways SET last_contact_at = now() - INTERVAL '1 hour' WHERE id = 'gw-old'")
    expect((await fx.call('GET', '/v1/gateways')).body.find((g: any) => g.id === 'gw-old')).toMatchObject({ silent: true, lost: false, devices: 0 })
    expect((await fx.call('GET', '/v1/gateways', undefined, TOKENS.gateway)).status).toBe(403)
    const metrics = (await fx.app.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/^sos_gateway_outbox_depth\{gateway="gw-h"\} 42$/m)
    expect(metrics).toMatch(/^sos_gateway_seconds_since_contact\{gateway="gw-h"\} \d/m)
  })

  it('sees the contact another server instance recorded (one database, two instances)', async () => {
    await fx.provision('x-1')
    await fx.ingest({ events: [heartbeat('x-1', 1, 'gw-x')] })
    const other = await buildFixture(db, { settings: { gatewayLostAfterMs: LOST_AFTER } })
    try {
      // gw-x calls only the first instance; the second watches too.
      await waitCalling(LOST_AFTER + 600, ['gw-x', 'gw-a'])
      await look(other)
      await look()
      expect(await offlineAlert('x-1')).toBeUndefined()
      expect(other.app.services.gatewayWatch.lostGateways()).not.toContain('gw-x')
    } finally {
      await other.app.close()
    }
  })

  it('gives every gateway a full interval after the server was down, then reports what is still silent', async () => {
    await fx.provision('d-1')
    await fx.ingest({ events: [heartbeat('d-1', 1, 'gw-d')] })
    expect(await poll('gw-d')).toBe(200)
    // The server goes down; gw-d goes too, meanwhile.
    await fx.app.close()
    await sleep(LOST_AFTER + 300)
    await start()
    await look()
    expect(await offlineAlert('d-1')).toBeUndefined()
    await sleep(LOST_AFTER + 300)
    await look()
    expect(await offlineAlert('d-1')).toMatchObject({ state: 'open' })
  })

  it('gives every gateway a full interval again after its own passes stalled (the process paused, the database away)', async () => {
    // This instance alone, its interval held (fake), so its passes run only when asked.
    await fx.app.close()
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    try {
      await start(LOST_AFTER / 2)
      await fx.provision('e-1')
      await fx.ingest({ events: [heartbeat('e-1', 1, 'gw-e')] })
      expect(await poll('gw-e')).toBe(200)
      await sleep(LOST_AFTER / 4)
      await look()
      // No pass for longer than the interval; gw-e, gone meanwhile, would seem lost at once.
      await sleep(LOST_AFTER + 300)
      await look()
      expect(await offlineAlert('e-1')).toBeUndefined()
      // Passes resume: a full interval later it is lost (looked for a while longer on a slow machine).
      for (const until = Date.now() + LOST_AFTER * 4; Date.now() < until && !await offlineAlert('e-1');) {
        await sleep(LOST_AFTER / 8)
        await look()
      }
      expect(await offlineAlert('e-1')).toMatchObject({ state: 'open' })
    } finally {
      vi.useRealTimers()
    }
  })
})

describe.skipIf(!testDatabaseUrl)('gateway watch beside ingest batches (PostgreSQL)', () => {
  let fx: Fixture
  let drop: () => Promise<void>
  let holder: pg.Client
  let url: string

  beforeAll(async () => {
    const created = await createTestDatabase()
    url = created.url
    drop = created.drop
    const db = await openPostgres(url)
    // Passes only when a test asks, so each sees what the watch does beside its lock holder.
    fx = await buildFixture(db, { settings: { gatewayLostAfterMs: LOST_AFTER }, gatewayWatch: { stallAfterMs: 60_000, checkEveryMs: 3_600_000 } })
    holder = new pg.Client({ connectionString: url })
    await holder.connect()
  }, 60_000)

  afterAll(async () => {
    await holder?.end()
    await fx?.app.close()
    await fx?.db.close()
    await drop?.()
  })

  it('never waits for an alert a batch holds: it leaves it to its next pass', async () => {
    await fx.provision('k-1')
    await fx.ingest({ events: [gatewayEvent('k-1', { seq: 1, type: 'heartbeat' }, Date.now(), 'gw-k')] })
    await fx.app.inject({ method: 'GET', url: '/v1/gateway/downlink?wait=0', headers: { authorization: `Bearer ${TOKENS.gateway}`, [GATEWAY_ID_HEADER]: 'gw-k' } })
    await sleep(LOST_AFTER + 500)
    await fx.app.services.gatewayWatch.check()
    const [alert] = (await fx.call('GET', '/v1/alerts?kind=device_offline&deviceId=k-1&state=open')).body
    expect(alert).toBeDefined()

    // k-1 is heard again while a batch (a presence change, a press) holds its alert.
    await fx.ingest({ events: [gatewayEvent('k-1', { seq: 2, type: 'heartbeat' }, Date.now(), 'gw-k')] })
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE', [alert.id])
    await fx.app.services.gatewayWatch.check()
    await fx.app.services.gatewayWatch.check()
    expect((await fx.call('GET', `/v1/alerts/${alert.id}`)).body.state).toBe('open')
    await holder.query('COMMIT')
    await fx.app.services.gatewayWatch.check()
    expect((await fx.call('GET', `/v1/alerts/${alert.id}`)).body.state).toBe('resolved')
  })

  it('is not held off by an acknowledgement being queued for a device (their locks are apart)', async () => {
    await fx.provision('k-2')
    await fx.ingest({ events: [gatewayEvent('k-2', { seq: 1, type: 'heartbeat' }, Date.now(), 'gw-k2')] })
    await fx.app.inject({ method: 'GET', url: '/v1/gateway/downlink?wait=0', headers: { authorization: `Bearer ${TOKENS.gateway}`, [GATEWAY_ID_HEADER]: 'gw-k2' } })
    await sleep(LOST_AFTER + 500)
    // An operator's acknowledge (a cancel, an announcement) is committing its downlink message.
    await holder.query('BEGIN')
    await new DownlinkQueue(fx.db, new Bus()).enqueue({ query: async (sql: string, params?: unknown[]) => (await holder.query(sql, params)).rows } as Queryable, [{ topic: 'sos/v1/k-9/ack', payload: { seq: 1, state: 'acknowledged' } }])
    try {
      await fx.app.services.gatewayWatch.check()
      const [alert] = (await fx.call('GET', '/v1/alerts?kind=device_offline&deviceId=k-2&state=open')).body
      expect(alert, 'the watch took the downlink queue\'s lock for a rival instance and skipped its pass').toBeDefined()
    } finally {
      await holder.query('ROLLBACK')
    }
  })
})
