/**
 * Event ids reused by a different event. A device that cannot keep its seq must send a new
 * `boot` after each start; a board reset or replaced under the same id without one repeats old
 * ids, and its press must not be answered `received` as the duplicate of an old heartbeat, with
 * no alert. A real copy (the gateway resending, the device redelivering) stays a duplicate.
 * Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

const plainBackends = databaseBackends.filter((b) => !b.timescale)

describe.each(plainBackends)('event ids reused on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const t0 = Date.now() - 3 * 24 * 3600_000

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const reusedCount = async () => {
    const text = (await fx.app.inject({ url: '/metrics' })).body
    return [...text.matchAll(/^sos_ingest_event_ids_reused_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
  }
  const panics = async (deviceId: string) => (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}&kind=panic`)).body as any[]

  it('stores a press that reuses an old heartbeat\'s seq under an id of its own and raises its alert; its resend is a duplicate', async () => {
    await fx.provision('reset-1')
    const heartbeats = Array.from({ length: 5 }, (_, i) => gatewayEvent('reset-1', { seq: i + 1, type: 'heartbeat' }, t0 + i * 30_000))
    expect((await fx.ingest({ events: heartbeats })).map((r) => r.status)).toEqual(Array(5).fill('stored'))

    // The board restarted its count without a new boot: its press carries seq 3 again.
    const press = gatewayEvent('reset-1', { seq: 3, type: 'press' }, t0 + 600_000)
    const [first] = await fx.ingest({ events: [press] })
    expect(first).toMatchObject({ eventId: press.eventId, status: 'stored', alertId: expect.any(String) })
    expect(await panics('reset-1')).toHaveLength(1)
    const { body: events } = await fx.call('GET', '/v1/events?deviceId=reset-1&type=press')
    expect(events).toHaveLength(1)

    // The gateway sends it again (its confirmation lost): the same receive time, a duplicate.
    const [again] = await fx.ingest({ events: [press] })
    expect(again).toMatchObject({ eventId: press.eventId, status: 'duplicate' })
    expect((await fx.call('GET', '/v1/events?deviceId=reset-1&type=press')).body).toHaveLength(1)
    expect(await panics('reset-1')).toHaveLength(1)
    // The device redelivers it after a reconnect (a new receive time): still that press, once.
    const [redelivered] = await fx.ingest({ events: [{ ...press, receivedAt: t0 + 660_000 }] })
    expect(redelivered).toMatchObject({ eventId: press.eventId, status: 'duplicate' })
    expect((await fx.call('GET', '/v1/events?deviceId=reset-1&type=press')).body).toHaveLength(1)
    expect(await reusedCount()).toBe(1)
    // Reused a second time, by another event (a long press): stored too.
    const [third] = await fx.ingest({ events: [gatewayEvent('reset-1', { seq: 3, type: 'hold' }, t0 + 900_000)] })
    expect(third).toMatchObject({ status: 'stored' })
    expect(await reusedCount()).toBe(2)
  })

  it('keeps a real copy a duplicate (resent, or redelivered by the device hours later), and stores one whose device clock differs', async () => {
    await fx.provision('copy-1')
    const press = gatewayEvent('copy-1', { seq: 7, type: 'press', ts: t0 }, t0 + 100)
    expect((await fx.ingest({ events: [press] }))[0]!.status).toBe('stored')
    const before = await reusedCount()
    // Redelivered by the device after a reconnect, through the gateway again: a new receive time, the same payload.
    const redelivered = { ...press, receivedAt: t0 + 3 * 3600_000 }
    expect((await fx.ingest({ events: [redelivered] }))[0]).toMatchObject({ status: 'duplicate' })
    // A heartbeat without a device clock redelivered within the day: a duplicate too.
    const beat = gatewayEvent('copy-1', { seq: 8, type: 'heartbeat' }, t0 + 200)
    await fx.ingest({ events: [beat] })
    expect((await fx.ingest({ events: [{ ...beat, receivedAt: t0 + 20 * 3600_000 }] }))[0]).toMatchObject({ status: 'duplicate' })
    expect(await reusedCount()).toBe(before)

    // The same seq and type but another device clock reading: another press.
    const later = gatewayEvent('copy-1', { seq: 7, type: 'press', ts: t0 + 86_000_000 }, t0 + 86_000_100)
    expect((await fx.ingest({ events: [later] }))[0]).toMatchObject({ status: 'stored', alertId: expect.any(String) })
    // Without a device clock, the same type more than a day later: not a copy either.
    const stale = gatewayEvent('copy-1', { seq: 8, type: 'heartbeat' }, t0 + 200 + 25 * 3600_000)
    expect((await fx.ingest({ events: [stale] }))[0]).toMatchObject({ status: 'stored' })
    expect(await reusedCount()).toBe(before + 2)
  })

  it('cancels a reused-id press with the cancel sent behind it in one batch', async () => {
    await fx.provision('shop-r', { kind: 'counter', pin: '1357' })
    await fx.ingest({ events: [gatewayEvent('shop-r', { seq: 2, type: 'heartbeat' }, t0)] })
    const before = await reusedCount()
    // The board restarted its count without a new boot: its press reuses seq 2, and the shop
    // owner cancels it at once; the gateway sends both together.
    const press = gatewayEvent('shop-r', { seq: 2, type: 'press' }, t0 + 600_000)
    const cancel = gatewayEvent('shop-r', { seq: 3, type: 'cancel', pin: '1357' }, t0 + 605_000)
    const [pressed, cancelled] = await fx.ingest({ events: [press, cancel] })
    expect(pressed).toMatchObject({ eventId: press.eventId, status: 'stored', alertId: expect.any(String) })
    expect(cancelled).toMatchObject({ eventId: cancel.eventId, status: 'stored', alertId: pressed!.alertId, alertState: 'cancelled' })
    const alerts = await panics('shop-r')
    expect(alerts.map((a) => a.state)).toEqual(['cancelled'])
    expect(await reusedCount()).toBe(before + 1)
    // The gateway sends the batch again (its confirmation lost): the same answers, nothing new.
    const again = await fx.ingest({ events: [press, cancel] })
    expect(again).toMatchObject([{ status: 'duplicate' }, { status: 'duplicate', alertState: 'cancelled' }])
    expect((await fx.call('GET', '/v1/events?deviceId=shop-r&type=press')).body).toHaveLength(1)
    expect(await reusedCount()).toBe(before + 1)
  })

  it('answers a resent cancel stored under an id of its own as it answered it the first time', async () => {
    await fx.provision('shop-s', { kind: 'counter', pin: '2580' })
    await fx.ingest({ events: [1, 2, 3].map((seq) => gatewayEvent('shop-s', { seq, type: 'heartbeat' }, t0 + seq)) })
    const [press] = await fx.ingest({ events: [gatewayEvent('shop-s', { seq: 1, type: 'press', ts: t0 + 600_000 }, t0 + 600_000)] })
    expect(press).toMatchObject({ status: 'stored', alertState: 'open' })
    // The board restarted its count: its cancel reuses the id of heartbeat 2.
    const cancel = gatewayEvent('shop-s', { seq: 2, type: 'cancel', pin: '2580' }, t0 + 605_000)
    const [first] = await fx.ingest({ events: [cancel] })
    expect(first).toMatchObject({ eventId: cancel.eventId, status: 'stored', alertId: press!.alertId, alertState: 'cancelled' })
    // Sent again by the gateway (its confirmation lost), then redelivered by the device.
    const [resent] = await fx.ingest({ events: [cancel] })
    expect(resent).toMatchObject({ eventId: cancel.eventId, status: 'duplicate', alertState: 'cancelled' })
    const [redelivered] = await fx.ingest({ events: [{ ...cancel, receivedAt: t0 + 650_000 }] })
    expect(redelivered).toMatchObject({ eventId: cancel.eventId, status: 'duplicate', alertState: 'cancelled' })
    // A wrong PIN under a reused id hears its refusal again too.
    const wrong = gatewayEvent('shop-s', { seq: 3, type: 'cancel', pin: '0000' }, t0 + 606_000)
    expect((await fx.ingest({ events: [wrong] }))[0]).toMatchObject({ status: 'stored', ackState: 'rejected' })
    expect((await fx.ingest({ events: [wrong] }))[0]).toMatchObject({ status: 'duplicate', ackState: 'rejected', reason: 'no open alert to cancel' })
  })

  it('counts each event once, as finally answered, when it is stored under an id of its own', async () => {
    const count = async (status: string) => {
      const text = (await fx.app.inject({ url: '/metrics' })).body
      return Number(text.match(new RegExp(`^sos_ingest_events_total\\{type="press",status="${status}"\\} (\\d+)$`, 'm'))?.[1] ?? 0)
    }
    await fx.provision('count-1')
    await fx.ingest({ events: [gatewayEvent('count-1', { seq: 1, type: 'heartbeat' }, t0)] })
    const [stored, duplicate] = [await count('stored'), await count('duplicate')]
    const press = gatewayEvent('count-1', { seq: 1, type: 'press' }, t0 + 600_000)
    await fx.ingest({ events: [press] })
    expect([await count('stored') - stored, await count('duplicate') - duplicate]).toEqual([1, 0])
    await fx.ingest({ events: [{ ...press, receivedAt: t0 + 660_000 }] })
    expect([await count('stored') - stored, await count('duplicate') - duplicate]).toEqual([1, 1])
  })

  it('stores a reused-id press and its redelivery, sent in one batch, once', async () => {
    await fx.provision('batch-1')
    await fx.ingest({ events: [gatewayEvent('batch-1', { seq: 4, type: 'heartbeat' }, t0)] })
    const before = await reusedCount()
    // The gateway kept both (the heartbeat holding the id had gone by the redelivery) and
    // sends them together.
    const press = gatewayEvent('batch-1', { seq: 4, type: 'press', ts: t0 + 600_000 }, t0 + 600_000)
    const results = await fx.ingest({ events: [press, { ...press, receivedAt: t0 + 660_000 }] })
    expect(results.map((r) => r.status).sort()).toEqual(['duplicate', 'stored'])
    expect((await fx.call('GET', '/v1/events?deviceId=batch-1&type=press')).body).toHaveLength(1)
    expect(await reusedCount()).toBe(before + 1)
  })
  it('stores both of two different alarms under one id in a large batch, each raising its own alert', async () => {
    // A counter reset without a new boot while the server was away: its tamper and, later, a
    // press under the same seq wait in the gateway's outbox and travel in one alarm batch with
    // other devices' alarms. The database kept one row per id in an order of its own, not the
    // batch's: the press's row was stored in the tamper's place, the tamper's alert raised,
    // and the press answered as the tamper's duplicate and dropped, with no panic alert.
    for (let i = 0; i < 30; i++) await fx.provision(`crowd-${i}`)
    for (let round = 0; round < 6; round++) {
      const id = `shop-reset-${round}`
      await fx.provision(id, { kind: 'counter', pin: '4321' })
      const at = t0 + round * 3_600_000
      const crowd = Array.from({ length: 30 }, (_, i) => gatewayEvent(`crowd-${i}`, { seq: 100 * round + i, type: 'tamper' }, at + 1000 + i))
      const tamper = gatewayEvent(id, { seq: 1, type: 'tamper', ts: at }, at)
      const press = gatewayEvent(id, { seq: 1, type: 'press', ts: at + 60_000 }, at + 60_000)
      const results = await fx.ingest({ events: [...crowd.slice(0, round * 5), tamper, ...crowd.slice(round * 5), press] })
      expect(results.filter((r) => r.eventId === tamper.eventId).map((r) => r.status), `round ${round}`).toEqual(['stored', 'stored'])
      const kinds = ((await fx.call('GET', `/v1/alerts?deviceId=${id}`)).body as any[]).map((a) => a.kind).sort()
      expect(kinds, `round ${round}`).toEqual(['panic', 'tamper'])
      const types = ((await fx.call('GET', `/v1/events?deviceId=${id}`)).body as any[]).map((e) => e.type).sort()
      expect(types, `round ${round}`).toEqual(['press', 'tamper'])
    }
  })
})
