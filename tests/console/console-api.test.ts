/**
 * What the console asks of the API, against the real server (fastify inject, embedded
 * PostgreSQL): an alert's `version`, which tells the newer of two reads that crossed on their
 * way, and the events of an alert's timeline without heartbeats, oldest first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from '../server/fixture.js'

describe('the API the console reads', () => {
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

  it('gives each alert a version that grows with every change to it, in the list and alone', async () => {
    await fx.provision('btn-ver-1')
    const now = Date.now()
    const [first] = await fx.ingest({ events: [gatewayEvent('btn-ver-1', { seq: 1, type: 'press' }, now)] })
    const id = first!.alertId!
    const versions: number[] = []
    const read = async () => {
      const { body } = await fx.call('GET', `/v1/alerts/${id}`)
      const [listed] = (await fx.call('GET', '/v1/alerts?deviceId=btn-ver-1')).body
      expect(listed.version).toBe(body.version)
      versions.push(body.version)
    }
    await read()
    await fx.ingest({ events: [gatewayEvent('btn-ver-1', { seq: 2, type: 'press' }, now + 1)] }) // a press joins it
    await read()
    expect((await fx.call('POST', `/v1/alerts/${id}/acknowledge`, {})).status).toBe(200)
    await read()
    expect((await fx.call('POST', `/v1/alerts/${id}/dispatch`, {})).status).toBe(200)
    await read()
    expect((await fx.call('POST', `/v1/alerts/${id}/resolve`, { outcome: 'test' })).status).toBe(200)
    await read()
    expect(versions.every((v, i) => i === 0 || v > versions[i - 1]!), versions.join(' < ')).toBe(true)
  })

  it('lists a device\'s events without a type (heartbeats) and oldest first, for an alert\'s timeline', async () => {
    await fx.provision('btn-ev-1')
    const start = Date.now() - 60_000
    await fx.ingest({ events: [gatewayEvent('btn-ev-1', { seq: 1, type: 'tamper' }, start)] })
    await fx.ingest({ events: Array.from({ length: 30 }, (_, i) => gatewayEvent('btn-ev-1', { seq: 2 + i, type: 'heartbeat' }, start + 1000 + i * 100)) })
    await fx.ingest({ events: [gatewayEvent('btn-ev-1', { seq: 40, type: 'press' }, start + 10_000)] })
    const from = new Date(start - 1000).toISOString()
    const { status, body } = await fx.call('GET', `/v1/events?deviceId=btn-ev-1&excludeType=heartbeat&order=asc&from=${from}&limit=10`)
    expect(status).toBe(200)
    expect(body.map((e: { type: string }) => e.type)).toEqual(['tamper', 'press'])
    // Oldest first: a page that starts at `from` holds what came first.
    const firstTwo = (await fx.call('GET', `/v1/events?deviceId=btn-ev-1&order=asc&from=${from}&limit=2`)).body
    expect(firstTwo.map((e: { seq: number }) => e.seq)).toEqual([1, 2])
    // The default is unchanged: newest first, every type.
    expect((await fx.call('GET', '/v1/events?deviceId=btn-ev-1&limit=1')).body[0].seq).toBe(40)
    expect((await fx.call('GET', '/v1/events?deviceId=btn-ev-1&excludeType=nonsense')).status).toBe(400)
  })
})
