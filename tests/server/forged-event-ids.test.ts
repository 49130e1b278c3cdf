/**
 * Event ids a gateway made up. The server stores each id once, and took the gateway's word for
 * it: any gateway token could send events of its own device under ids `X/-/1..3`, and device
 * X's real presses 1–3 were then answered `duplicate`, no alert opened, the device told
 * "received". Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { renamedEventId } from '../../protocol/index.js'
import { storeEvents } from '../../server/ingest/events.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

describe.each(databaseBackends.filter((b) => !b.timescale))('forged event ids on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const panics = async (deviceId: string) => (await fx.call('GET', `/v1/alerts?deviceId=${deviceId}&kind=panic`)).body as any[]

  it('refuses an event under another device\'s id, keeps it as a dead letter, and the device\'s own presses raise their alerts', async () => {
    await fx.provision('forger-1')
    await fx.provision('victim-1')
    const now = Date.now()
    // Presses of the forger's own device, under the victim's next ids, beside an honest heartbeat.
    const forged = [1, 2, 3].map((seq) => ({ ...gatewayEvent('forger-1', { seq: 900 + seq, type: 'press' }, now), eventId: `victim-1/-/${seq}` }))
    const honest = gatewayEvent('forger-1', { seq: 5, type: 'heartbeat' }, now)
    const results = await fx.ingest({ events: [forged[0]!, honest, forged[1]!, forged[2]!] })
    expect(results.map((r) => r.status)).toEqual(['refused', 'stored', 'refused', 'refused'])
    expect(results[0]).toMatchObject({ eventId: 'victim-1/-/1', ackState: 'rejected', reason: expect.stringMatching(/event id/) })
    expect(await panics('forger-1')).toEqual([])
    const { body: letters } = await fx.call('GET', '/v1/dead-letters?deviceId=forger-1')
    expect(letters).toHaveLength(3)
    expect(letters[0].reason).toMatch(/"victim-1\/-\/\d" is not the one of its device, boot and seq \("forger-1\/-\/90\d"\)/)

    // The same forged batch again: refused again, kept once.
    expect((await fx.ingest({ events: forged })).map((r) => r.status)).toEqual(['refused', 'refused', 'refused'])
    expect((await fx.call('GET', '/v1/dead-letters?deviceId=forger-1')).body).toHaveLength(3)

    // The victim presses, through an honest gateway: each press stored, its alert opened.
    for (const seq of [1, 2, 3]) {
      const [press] = await fx.ingest({ events: [gatewayEvent('victim-1', { seq, type: 'press' }, Date.now())] })
      expect(press, `press ${seq}`).toMatchObject({ status: 'stored', alertId: expect.any(String) })
    }
    expect(await panics('victim-1')).toHaveLength(1)
  })

  it('refuses an id whose boot or seq is not the event\'s, and takes the forms a gateway sends', async () => {
    await fx.provision('named-1')
    const now = Date.now()
    const own = gatewayEvent('named-1', { seq: 7, boot: 'b-2', type: 'heartbeat' }, now)
    const results = await fx.ingest({ events: [
      { ...own, eventId: 'named-1/b-1/7' },
      { ...own, eventId: 'named-1/b-2/8' },
      { ...own, eventId: `${own.eventId}#reused@${now - 1}` },
      own,
      // An id reused by another event, as the gateway's outbox names it while the first waits.
      { ...gatewayEvent('named-1', { seq: 9, type: 'press' }, now), eventId: renamedEventId('named-1/-/9', now) }
    ] })
    expect(results.map((r) => r.status)).toEqual(['refused', 'refused', 'refused', 'stored', 'stored'])
  })

  it('stores a device\'s press whose id another device\'s event took before ids were checked, and raises its alert', async () => {
    await fx.provision('forger-2')
    await fx.provision('victim-2')
    const now = Date.now()
    // Stored as the server stored them before it checked ids.
    const forged = [1, 2].map((seq) => ({ ...gatewayEvent('forger-2', { seq: 900 + seq, type: 'press' }, now - 60_000), eventId: `victim-2/-/${seq}` }))
    await storeEvents(fx.db, forged)
    const [first, second] = await fx.ingest({ events: [
      gatewayEvent('victim-2', { seq: 1, type: 'press' }, now),
      gatewayEvent('victim-2', { seq: 2, type: 'press' }, now + 10)
    ] })
    expect(first).toMatchObject({ eventId: 'victim-2/-/1', status: 'stored', alertId: expect.any(String) })
    expect(second).toMatchObject({ eventId: 'victim-2/-/2', status: 'stored', alertId: first!.alertId })
    expect(await panics('victim-2')).toHaveLength(1)
    // Its resend is its duplicate, not a third event.
    const [again] = await fx.ingest({ events: [gatewayEvent('victim-2', { seq: 1, type: 'press' }, now)] })
    expect(again).toMatchObject({ status: 'duplicate' })
    expect((await fx.call('GET', '/v1/events?deviceId=victim-2', undefined, await fx.tokenFor('operator'))).body).toHaveLength(2)
  })
})
