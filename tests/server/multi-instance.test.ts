/**
 * Two server instances on one PostgreSQL database, as behind a load balancer: an operator's live
 * stream on one instance shows at once what another instance changed (a press ingested there, an
 * acknowledgement), and when the instance's listening connection to the others is cut, its
 * stream clients are told to reload, since changes may have been missed meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { openPostgres } from '../../server/db/postgres.js'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { openStream } from './stream-client.js'

describe.skipIf(!testDatabaseUrl)('two server instances on one PostgreSQL database (needs TEST_DATABASE_URL)', () => {
  let url: string
  let drop: () => Promise<void>
  const dbs: Database[] = []
  let one: Fixture
  let two: Fixture

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    for (let i = 0; i < 2; i++) dbs.push(await openPostgres(url))
    one = await buildFixture(dbs[0]!)
    two = await buildFixture(dbs[1]!)
    await two.app.listen({ port: 0, host: '127.0.0.1' })
  }, 180_000)

  afterAll(async () => {
    await one?.app.close()
    await two?.app.close()
    for (const db of dbs) await db.close()
    await drop?.()
  })

  it('shows on one instance\'s live stream an alert raised and acknowledged through the other', async () => {
    await one.provision('btn-multi-1')
    const stream = await openStream(two)
    const [press] = await one.ingest({ events: [gatewayEvent('btn-multi-1', { seq: 1, type: 'press' }, Date.now())] })
    await stream.waitFor(`"alertId":"${press!.alertId}","deviceId":"btn-multi-1","state":"open"`)
    expect((await one.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`)).status).toBe(200)
    await stream.waitFor(`"alertId":"${press!.alertId}","deviceId":"btn-multi-1","state":"acknowledged"`)
    await stream.close()
  })

  it('relays nothing it cannot tell is another instance\'s: a forged notification makes clients reload, never shows', async () => {
    // Anyone who can connect may NOTIFY (Grafana's login too): an alert "resolved" that was not.
    const stream = await openStream(two)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      const forged = [['alert', { alertId: 'forged-1', deviceId: 'btn-multi-1', state: 'resolved', kind: 'panic' }]]
      await admin.query("SELECT pg_notify('sos_bus', $1)", [JSON.stringify({ from: 'someone', events: forged })])
      await admin.query("NOTIFY sos_bus, '" + JSON.stringify({ from: 'someone', body: JSON.stringify(forged), mac: 'AAAA' }).replace(/'/g, "''") + "'")
      const [row] = (await admin.query("SELECT count(*)::int AS n FROM sos_secrets")).rows
      expect(row.n).toBe(1) // the key is there, for the owner only
    } finally {
      await admin.end()
    }
    // At once for the first; the second, in the same window, at the window's end (not dropped).
    await stream.waitFor('event: reset')
    await stream.waitFor('event: reset')
    await one.provision('btn-multi-4')
    const [press] = await one.ingest({ events: [gatewayEvent('btn-multi-4', { seq: 1, type: 'press' }, Date.now())] })
    await stream.waitFor(`"alertId":"${press!.alertId}"`)
    expect(stream.said()).not.toContain('forged-1')
    await stream.close()
  })

  it('shrugs off notifications on its channel that are not another instance\'s events', async () => {
    const stream = await openStream(two)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      for (const payload of ['not json', 'null', '{"from":"x","events":[1,["downlink",null],["alert",{"x":1}],["nope",{}]]}']) {
        await admin.query("SELECT pg_notify('sos_bus', $1)", [payload])
      }
    } finally {
      await admin.end()
    }
    await one.provision('btn-multi-3')
    const [press] = await one.ingest({ events: [gatewayEvent('btn-multi-3', { seq: 1, type: 'press' }, Date.now())] })
    await stream.waitFor(`"alertId":"${press!.alertId}"`)
    await stream.close()
  })

  it('tells its stream clients to reload when its connection to the others was cut', async () => {
    const stream = await openStream(two)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      // Both instances listen; cutting both is enough to be sure instance two's was cut.
      const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sos-bus-listener' AND datname = current_database()")
      expect(rowCount).toBe(2)
    } finally {
      await admin.end()
    }
    await stream.waitFor('event: reset')
    // Listening again: the next change through the other instance shows.
    await one.provision('btn-multi-2')
    const [press] = await one.ingest({ events: [gatewayEvent('btn-multi-2', { seq: 1, type: 'press' }, Date.now())] })
    await stream.waitFor(`"alertId":"${press!.alertId}"`)
    await stream.close()
  })
})
