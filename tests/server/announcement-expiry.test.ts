/**
 * A zone's retained announcement follows its announcements (DESIGN.md §3, §5): when the newest
 * expires or is withdrawn, the one before it still running is retained again, or the topic is
 * cleared; this holds across a server restart. POST says how many kiosks the zone has, and
 * DELETE withdraws. Read where a gateway reads it: the downlink queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { eventually } from '../helpers/system.js'
import { buildFixture, TOKENS, type Fixture } from './fixture.js'
import { topics } from '../../protocol/index.js'
import type { Database } from '../../server/db/database.js'
import { Announcements } from '../../server/announcements/service.js'
import { DownlinkQueue } from '../../server/downlink/queue.js'
import { Bus } from '../../server/bus.js'

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(databaseBackends.filter((b) => !b.timescale))('announcements over ($name)', ({ open }) => {
  let db: Database
  let dispose: () => Promise<void>
  let fx: Fixture
  let operator: string

  beforeAll(async () => {
    const opened = await open()
    db = opened.db
    dispose = opened.dispose
    fx = await buildFixture(db)
    operator = await fx.tokenFor('operator')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const announce = (zone: string, title: string, expiresAt: string, token = operator) =>
    fx.call('POST', '/v1/announcements', { zone, title, body: `${title} body`, lang: 'vi', expiresAt }, token)

  /** The zone's retained message as a gateway would publish it last: a payload, or '' (cleared). */
  const retainedIn = async (zone: string, app = fx) => {
    const { body } = await app.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)
    return (body.messages as any[]).filter((m) => m.topic === topics.announce(zone) && m.retain).at(-1)?.payload
  }

  it('POST answers how many kiosks of the zone receive it: 0 for a zone without any, still 201', async () => {
    await fx.provision('kiosk-ann-1', { kind: 'kiosk', zone: 'ann-kiosks' })
    await fx.provision('kiosk-ann-2', { kind: 'kiosk', zone: 'ann-kiosks' })
    await fx.provision('kiosk-ann-3', { kind: 'kiosk', zone: 'ann-kiosks' })
    await fx.provision('btn-ann-1', { kind: 'button', zone: 'ann-kiosks' })
    expect((await fx.call('DELETE', '/v1/devices/kiosk-ann-3')).status).toBe(204)

    const posted = await announce('ann-kiosks', 'Họp tổ dân phố', inMs(3_600_000))
    expect(posted.status).toBe(201)
    expect(posted.body).toMatchObject({ zone: 'ann-kiosks', title: 'Họp tổ dân phố', kiosks: 2 })
    const typo = await announce('ann-kiosk', 'Họp tổ dân phố', inMs(3_600_000))
    expect(typo.status).toBe(201)
    expect(typo.body.kiosks).toBe(0)
  })

  it('when the newest expires, the one before it still running is retained again; when none is left, the topic is cleared', async () => {
    const zone = 'ann-expiry'
    const dayLong = (await announce(zone, 'Cúp nước cả ngày', inMs(86_400_000))).body
    const short = (await announce(zone, 'Short', inMs(1500))).body
    expect(await retainedIn(zone)).toMatchObject({ id: short.id, title: 'Short' })

    await eventually(async () => (await retainedIn(zone))?.id === dayLong.id ? true : undefined, 15_000, 'the day-long one retained again')
    expect(await retainedIn(zone)).toEqual({ id: dayLong.id, title: 'Cúp nước cả ngày', body: 'Cúp nước cả ngày body', lang: 'vi', expiresAt: dayLong.expiresAt })

    const last = (await announce('ann-alone', 'Alone', inMs(1500))).body
    expect((await retainedIn('ann-alone')).id).toBe(last.id)
    await eventually(async () => (await retainedIn('ann-alone')) === '' ? true : undefined, 15_000, 'the zone cleared')
  })

  it('an older announcement expiring under a newer one changes nothing', async () => {
    const zone = 'ann-older'
    await announce(zone, 'Old and short', inMs(1000))
    const newer = (await announce(zone, 'Newer and long', inMs(3_600_000))).body
    await sleep(2500)
    const messages = (await fx.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)).body.messages as any[]
    expect(messages.filter((m) => m.topic === topics.announce(zone)).map((m) => m.payload.title)).toEqual(['Old and short', 'Newer and long'])
    expect((await retainedIn(zone)).id).toBe(newer.id)
  })

  it('DELETE withdraws: the zone goes back to the one before it, or is cleared; again is 200, unknown 404, an analyst 403', async () => {
    const zone = 'ann-withdraw'
    const first = (await announce(zone, 'First', inMs(3_600_000))).body
    const second = (await announce(zone, 'Second', inMs(3_600_000))).body
    const analyst = await fx.tokenFor('analyst')
    expect((await fx.call('DELETE', `/v1/announcements/${second.id}`, undefined, analyst)).status).toBe(403)

    const withdrawn = await fx.call('DELETE', `/v1/announcements/${second.id}`, undefined, operator)
    expect(withdrawn.status).toBe(200)
    expect(withdrawn.body.id).toBe(second.id)
    expect(Date.parse(withdrawn.body.expiresAt)).toBeLessThanOrEqual(Date.now())
    expect((await retainedIn(zone)).id).toBe(first.id)

    const again = await fx.call('DELETE', `/v1/announcements/${second.id}`, undefined, operator)
    expect(again).toMatchObject({ status: 200, body: { id: second.id, expiresAt: withdrawn.body.expiresAt } })
    expect((await fx.call('DELETE', `/v1/announcements/${first.id}`)).status).toBe(200) // admin too
    expect(await retainedIn(zone)).toBe('')

    const unknown = await fx.call('DELETE', '/v1/announcements/no-such-announcement', undefined, operator)
    expect(unknown).toEqual({ status: 404, body: { statusCode: 404, code: 'NOT_FOUND', message: 'announcement not found' } })
    const listed = (await fx.call('GET', `/v1/announcements?zone=${zone}`)).body as any[]
    expect(listed.map((a) => a.id).sort()).toEqual([first.id, second.id].sort())
  })

  it('an announcement that expired while no server ran is put right when the server starts', async () => {
    const zone = 'ann-restart'
    const dayLong = (await announce(zone, 'Cúp nước cả ngày', inMs(86_400_000))).body
    await fx.app.close() // the server stops, and its expiry timer with it
    // Posted by another instance that stopped before the expiry: no server times it.
    const elsewhere = new Announcements(db, new DownlinkQueue(db, new Bus()))
    const short = await elsewhere.create({ zone, title: 'Short', body: 'b', lang: 'vi', expiresAt: inMs(1000) }, 'operator-2')
    await sleep(1500)
    const latest = async () => (await db.query<{ payload: any }>(
      'SELECT payload FROM downlink WHERE topic = $1 AND retain ORDER BY id DESC LIMIT 1', [topics.announce(zone)]))[0]!.payload
    expect((await latest()).id).toBe(short.id) // expired, and still what a rebooted kiosk would get

    fx = await buildFixture(db) // the server starts again
    operator = await fx.tokenFor('operator')
    await eventually(async () => (await latest()).id === dayLong.id ? true : undefined, 15_000, 'the day-long one retained again at start')
  })
})
