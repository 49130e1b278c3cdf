/**
 * Alarms that reach the server late (held in a gateway's outbox: a restart, a hanging disk, the
 * server away) or through a gateway whose clock is wrong: each alert is dated when its person
 * pressed, on the server's clock; one dated before its device's alert was closed is dated at the
 * server's time, never joined to the closed incident. Runs on embedded PGlite, and on PostgreSQL
 * when TEST_DATABASE_URL is set.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ServerClient } from '../../gateway/server-client.js'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

const ESCALATE_AFTER_MS = 60_000
const MINUTE = 60_000

describe.each(databaseBackends.filter((b) => !b.timescale))('late alarms on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let operator: string

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, { settings: { cancelWindowMs: 30_000, escalateAfterMs: ESCALATE_AFTER_MS } })
    operator = await fx.tokenFor('operator')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const alertOf = async (id: string) => (await fx.call('GET', `/v1/alerts/${id}`, undefined, operator)).body
  const alertsOfDevice = async (deviceId: string) => (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}`, undefined, operator)).body as any[]
  const act = async (id: string, action: string, body: object = {}) => expect((await fx.call('POST', `/v1/alerts/${id}/${action}`, body, operator)).status).toBe(200)
  const lastSeqOf = async (id: string) => Number((await fx.db.query<{ last_seq: number }>('SELECT last_seq FROM alerts WHERE id = $1', [id]))[0]!.last_seq)
  const escalationLevels = async (deviceId: string) => (await alertsOfDevice(deviceId)).map((a) => a.escalationLevel)

  it('a late press dated before its alert was resolved opens a new alert at the server\'s time: never swallowed into the closed incident, nor escalated at once', async () => {
    // Made while the alert was open and held in an outbox, or made just now through a gateway
    // whose clock was set back then forward between the press and the sending: its time cannot
    // tell. Joined to the closed alert, the second was a new press no one would ever see.
    await fx.provision('btn-late-resolved')
    const t0 = Date.now() - 5 * MINUTE
    const [first] = await fx.ingest({ events: [gatewayEvent('btn-late-resolved', { seq: 1, type: 'press' }, t0, 'gw-a')], sentAt: Date.now() })
    await act(first!.alertId!, 'acknowledge')
    await act(first!.alertId!, 'resolve', { outcome: 'real' })
    const before = Date.now()
    const [late] = await fx.ingest({ events: [gatewayEvent('btn-late-resolved', { seq: 2, type: 'press' }, t0 + 5_000, 'gw-b')], sentAt: Date.now() })
    expect(late).toMatchObject({ status: 'stored', alertState: 'open' })
    expect(late!.alertId).not.toBe(first!.alertId)
    expect(Date.parse((await alertOf(late!.alertId!)).openedAt)).toBeGreaterThanOrEqual(before)
    await fx.app.services.escalator.check()
    expect(await escalationLevels('btn-late-resolved')).toEqual([0, 0])
    expect(await alertOf(first!.alertId!)).toMatchObject({ state: 'resolved', pressCount: 1 })
    // Resent, it is a duplicate and counts once.
    const [again] = await fx.ingest({ events: [gatewayEvent('btn-late-resolved', { seq: 2, type: 'press' }, t0 + 5_000, 'gw-b')], sentAt: Date.now() })
    expect(again).toMatchObject({ status: 'duplicate' })
    expect(await alertsOfDevice('btn-late-resolved')).toHaveLength(2)
  })

  it('a late press of an incident cancelled on the device does not drag a new alert\'s opening back', async () => {
    await fx.provision('ctr-late-cancelled', { kind: 'counter', pin: '4321' })
    const t = Date.now()
    const [p1] = await fx.ingest({ events: [gatewayEvent('ctr-late-cancelled', { seq: 1, boot: 'b1', type: 'press' }, t - 120_000, 'gw-a')], sentAt: Date.now() })
    const [cancel] = await fx.ingest({ events: [gatewayEvent('ctr-late-cancelled', { seq: 3, boot: 'b1', type: 'cancel', pin: '4321' }, t - 110_000, 'gw-a')], sentAt: Date.now() })
    expect(cancel).toMatchObject({ alertId: p1!.alertId, alertState: 'cancelled' })
    const [p4] = await fx.ingest({ events: [gatewayEvent('ctr-late-cancelled', { seq: 4, boot: 'b1', type: 'press' }, Date.now() - 2_000, 'gw-a')], sentAt: Date.now() })
    const openedAt = (await alertOf(p4!.alertId!)).openedAt
    // Seq 2, pressed before the cancel, held in gateway B's outbox, arrives now.
    await fx.ingest({ events: [gatewayEvent('ctr-late-cancelled', { seq: 2, boot: 'b1', type: 'press' }, t - 118_000, 'gw-b')], sentAt: Date.now() })
    await fx.app.services.escalator.check()
    expect(await alertOf(p4!.alertId!)).toMatchObject({ openedAt, escalationLevel: 0 })
  })

  it('a press made after the resolution opens a new alert, even when it comes late', async () => {
    await fx.provision('btn-after-resolved')
    const t0 = Date.now() - 5 * MINUTE
    const [first] = await fx.ingest({ events: [gatewayEvent('btn-after-resolved', { seq: 1, type: 'press' }, t0)], sentAt: Date.now() })
    await act(first!.alertId!, 'resolve', { outcome: 'false_alarm' })
    // Pressed 30 s after the resolution, held 60 s on its way (the resolution moved back to make room).
    const pressedAt = Date.now() - 60_000
    await fx.db.query("UPDATE alerts SET resolved_at = to_timestamp($2::float8 / 1000.0) WHERE id = $1", [first!.alertId, pressedAt - 30_000])
    const [late] = await fx.ingest({ events: [gatewayEvent('btn-after-resolved', { seq: 2, type: 'press' }, pressedAt)], sentAt: Date.now() })
    expect(late!.alertId).not.toBe(first!.alertId)
    expect(await alertOf(late!.alertId!)).toMatchObject({ state: 'open', openedAt: new Date(pressedAt).toISOString() })
  })

  it('from a gateway whose clock is not known, such a late press opens a new alert at the server\'s time: it is not swallowed, nor escalated at once', async () => {
    await fx.provision('btn-late-unknown-clock')
    const t0 = Date.now() - 5 * MINUTE
    const [first] = await fx.ingest({ events: [gatewayEvent('btn-late-unknown-clock', { seq: 1, type: 'press' }, t0)] })
    await act(first!.alertId!, 'resolve', { outcome: 'real' })
    // An older gateway (no `sentAt`): seq 2 says 5 s after seq 1, but its clock may be minutes
    // behind and the press made just now.
    const before = Date.now()
    const [late] = await fx.ingest({ events: [gatewayEvent('btn-late-unknown-clock', { seq: 2, type: 'press' }, t0 + 5_000)] })
    expect(late!.alertId).not.toBe(first!.alertId)
    const second = await alertOf(late!.alertId!)
    expect(second.state).toBe('open')
    expect(Date.parse(second.openedAt)).toBeGreaterThanOrEqual(before)
    await fx.app.services.escalator.check()
    expect(await escalationLevels('btn-late-unknown-clock')).toEqual([0, 0])
  })

  it('an earlier press that joins later moves the alert\'s opening back (escalation and KPIs count from it), and the alert keeps the latest seq', async () => {
    await fx.provision('btn-earlier')
    const now = Date.now()
    // Seq 2 (30 s ago, through gateway B) opens the alert; seq 1 (90 s ago) was held in gateway A.
    const [second] = await fx.ingest({ events: [gatewayEvent('btn-earlier', { seq: 2, type: 'press' }, now - 30_000, 'gw-b')], sentAt: Date.now() })
    expect(await fx.app.services.escalator.check()).toBe(0)
    const [first] = await fx.ingest({ events: [gatewayEvent('btn-earlier', { seq: 1, type: 'press' }, now - 90_000, 'gw-a')], sentAt: Date.now() })
    expect(first!.alertId).toBe(second!.alertId)
    expect(await alertOf(first!.alertId!)).toMatchObject({ openedAt: new Date(now - 90_000).toISOString(), lastPressAt: new Date(now - 30_000).toISOString(), pressCount: 2 })
    expect(await lastSeqOf(first!.alertId!)).toBe(2)
    // Unacknowledged for 90 s: escalated, from the first press.
    expect(await fx.app.services.escalator.check()).toBe(1)
    expect((await alertOf(first!.alertId!)).escalationLevel).toBe(1)
  })

  it('an earlier press that is not late (one statement, no transaction) moves the opening back too', async () => {
    await fx.provision('btn-earlier-fresh')
    const now = Date.now()
    const [second] = await fx.ingest({ events: [gatewayEvent('btn-earlier-fresh', { seq: 2, type: 'press' }, now - 1_000, 'gw-b')] })
    const [first] = await fx.ingest({ events: [gatewayEvent('btn-earlier-fresh', { seq: 1, type: 'press' }, now - 2_000, 'gw-a')] })
    expect(first!.alertId).toBe(second!.alertId)
    expect((await alertOf(first!.alertId!)).openedAt).toBe(new Date(now - 2_000).toISOString())
    expect(await lastSeqOf(first!.alertId!)).toBe(2)
  })

  it('a press through a gateway ten minutes slow is dated at the server\'s time, not escalated the moment it is stored; the event keeps the gateway\'s stamp', async () => {
    await fx.provision('btn-slow-gateway')
    const gatewayNow = Date.now() - 10 * MINUTE
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-slow-gateway', { seq: 1, type: 'press' }, gatewayNow, 'gw-slow')], sentAt: gatewayNow })
    expect(await fx.app.services.escalator.check()).toBe(0)
    const alert = await alertOf(press!.alertId!)
    expect(alert.escalationLevel).toBe(0)
    expect(Date.now() - Date.parse(alert.openedAt)).toBeLessThan(5_000)
    const [event] = (await fx.call('GET', '/v1/events?deviceId=btn-slow-gateway', undefined, operator)).body
    expect(Date.parse(event.time)).toBe(gatewayNow)
  })

  it('a press held in the outbox of a gateway whose clock is wrong keeps its wait', async () => {
    await fx.provision('btn-slow-held')
    await fx.provision('btn-fast-held')
    // Ten minutes slow, the press waited 90 s: opened 90 s ago, due for escalation.
    const slowNow = Date.now() - 10 * MINUTE
    const [slow] = await fx.ingest({ events: [gatewayEvent('btn-slow-held', { seq: 1, type: 'press' }, slowNow - 90_000, 'gw-slow')], sentAt: slowNow })
    // Five minutes fast, the press waited 30 s: opened 30 s ago (not now).
    const fastNow = Date.now() + 5 * MINUTE
    const [fast] = await fx.ingest({ events: [gatewayEvent('btn-fast-held', { seq: 1, type: 'press' }, fastNow - 30_000, 'gw-fast')], sentAt: fastNow })
    const waited = async (id: string) => (Date.now() - Date.parse((await alertOf(id)).openedAt)) / 1000
    expect(await waited(slow!.alertId!)).toBeGreaterThanOrEqual(90)
    expect(await waited(slow!.alertId!)).toBeLessThan(95)
    expect(await waited(fast!.alertId!)).toBeGreaterThanOrEqual(30)
    expect(await waited(fast!.alertId!)).toBeLessThan(35)
    await fx.app.services.escalator.check()
    expect((await alertOf(slow!.alertId!)).escalationLevel).toBe(1)
    expect((await alertOf(fast!.alertId!)).escalationLevel).toBe(0)
  })
})

describe('the gateway\'s server client', () => {
  let server: Server
  const bodies: any[] = []

  beforeAll(async () => {
    server = createServer((request, response) => {
      let text = ''
      request.on('data', (chunk) => { text += chunk })
      request.on('end', () => {
        bodies.push(JSON.parse(text))
        response.setHeader('content-type', 'application/json')
        response.end('{"results":[]}')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  })

  afterAll(async () => { await new Promise((resolve) => server.close(resolve)) })

  it('says when it sent each batch, on the gateway\'s clock', async () => {
    const client = new ServerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token', 'gw-clock')
    try {
      const before = Date.now()
      await client.ingest([], {}, 'alarm')
      await client.ingest([JSON.stringify(gatewayEvent('btn-x', { seq: 1, type: 'press' }, before))], { gateway: { gatewayId: 'gw-clock', outboxDepth: 1, outboxFull: false } }, 'alarm')
      expect(bodies).toHaveLength(2)
      for (const body of bodies) {
        expect(body.sentAt).toBeGreaterThanOrEqual(before)
        expect(body.sentAt).toBeLessThanOrEqual(Date.now())
      }
      expect(bodies[1]).toMatchObject({ events: [{ eventId: 'btn-x/-/1' }], gateway: { gatewayId: 'gw-clock' } })
    } finally {
      await client.close()
    }
  })
})

describe('a gateway clock measured under load', () => {
  it('counts the wait inside the server (a busy database) as no clock offset: the alarm keeps its time', async () => {
    // The offset was taken when the handler ran: a request that waited 7 s for its token to be
    // looked up had every alarm in it dated 7 s later, and escalated 7 s late.
    const [backend] = databaseBackends
    const { db, dispose } = await backend!.open()
    let slowTokens = false
    const slow = Object.create(db) as typeof db
    slow.query = async (sql: string, params?: unknown[]) => {
      if (slowTokens && sql.includes('FROM api_tokens')) await new Promise((resolve) => setTimeout(resolve, 7_000))
      return db.query(sql, params) as never
    }
    const fx = await buildFixture(slow)
    try {
      const gatewayToken = await fx.tokenFor('gateway')
      await fx.provision('btn-busy-db')
      slowTokens = true
      const pressedAt = Date.now()
      const { status, body } = await fx.call('POST', '/v1/ingest', { events: [gatewayEvent('btn-busy-db', { seq: 1, type: 'press' }, pressedAt)], sentAt: pressedAt }, gatewayToken)
      slowTokens = false
      expect(status).toBe(200)
      const alert = (await fx.call('GET', `/v1/alerts/${body.results[0].alertId}`)).body
      expect(Math.abs(Date.parse(alert.openedAt) - pressedAt)).toBeLessThan(1_000)
    } finally {
      await fx.app.close()
      await dispose()
    }
  }, 60_000)
})
