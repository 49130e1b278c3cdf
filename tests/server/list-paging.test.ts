/**
 * The lists page without skipping or repeating a row. Paged by `to=` the time of the last row
 * seen, rows sharing that time were lost: the offline alerts of a lost gateway share one
 * `opened_at`, and events arrive thousands a second. Each list is now ordered by time and then
 * id, and a full page answers `Link: <…>; rel="next"` whose cursor starts the next page right
 * after its last row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'

/** Follows the `next` links from `url`; each page's ids, in order. */
async function allPages (fx: Fixture, url: string, idOf: (row: any) => string): Promise<string[][]> {
  const pages: string[][] = []
  for (let next: string | undefined = url; next !== undefined;) {
    const response = await fx.app.inject({ method: 'GET', url: next, headers: { authorization: `Bearer ${TOKENS.admin}` } })
    expect(response.statusCode, response.body).toBe(200)
    pages.push((response.json() as any[]).map(idOf))
    const link = response.headers.link as string | undefined
    next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined
    expect(pages.length).toBeLessThan(50)
  }
  return pages
}

for (const backend of databaseBackends) {
  describe(`list paging (${backend.name})`, () => {
    let fx: Fixture
    let dispose: () => Promise<void>
    // One instant for everything: the worst case for paging by time.
    const t0 = Date.now() - 60_000

    beforeAll(async () => {
      const opened = await backend.open()
      dispose = opened.dispose
      fx = await buildFixture(opened.db)
      for (let i = 0; i < 7; i++) await fx.provision(`btn-page-${i}`)
      for (let i = 0; i < 3; i++) await fx.provision(`ksk-page-${i}`, { kind: 'kiosk' })
      await fx.ingest({
        events: [
          ...Array.from({ length: 7 }, (_, i) => gatewayEvent(`btn-page-${i}`, { seq: 1, type: 'press' }, t0)),
          ...Array.from({ length: 7 }, (_, i) => gatewayEvent(`btn-page-${i}`, { seq: 2, type: 'heartbeat' }, t0)),
          ...Array.from({ length: 3 }, (_, i) => gatewayEvent(`ksk-page-${i}`, { seq: 1, type: 'report', report: { category: 'other', text: `report ${i}` } }, t0)),
          // One later event, so the list does not start at the shared instant.
          gatewayEvent('btn-page-0', { seq: 3, type: 'heartbeat' }, t0 + 5),
          // A gateway that stamped microseconds as milliseconds: year 55 840, twice, first in a newest-first list.
          gatewayEvent('btn-page-6', { seq: 3, type: 'heartbeat' }, 1.7e15),
          gatewayEvent('btn-page-6', { seq: 4, type: 'heartbeat' }, 1.7e15)
        ]
      })
    }, 180_000)

    afterAll(async () => {
      await fx?.app.close()
      await dispose?.()
    })

    it('alerts opened at one instant: every one once, over pages of 3', async () => {
      const pages = await allPages(fx, '/v1/alerts?limit=3&zone=zone-a', (a) => a.id)
      const ids = pages.flat()
      expect(ids).toHaveLength(7)
      expect(new Set(ids).size).toBe(7)
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1])
      // The same order as one big page.
      expect(ids).toEqual((await fx.call('GET', '/v1/alerts?limit=100&zone=zone-a')).body.map((a: any) => a.id))
    })

    it('events, newest first and oldest first: every one once, over pages of 4, filters kept', async () => {
      const all = (await fx.call('GET', '/v1/events?limit=1000')).body.map((e: any) => e.eventId)
      expect(all).toHaveLength(20)
      for (const order of ['desc', 'asc']) {
        const ids = (await allPages(fx, `/v1/events?limit=4&order=${order}`, (e) => e.eventId)).flat()
        expect(ids, order).toEqual(order === 'desc' ? all : [...all].reverse())
      }
      const beats = (await allPages(fx, '/v1/events?limit=2&type=heartbeat', (e) => e.eventId)).flat()
      expect(beats).toHaveLength(10)
      expect(new Set(beats).size).toBe(10)
      // One a page, through the two of year 55 840 that share their time.
      expect((await allPages(fx, '/v1/events?limit=1&deviceId=btn-page-6', (e) => e.eventId)).flat()).toHaveLength(4)
    })

    it('reports filed at one instant: every one once, over pages of 2', async () => {
      const ids = (await allPages(fx, '/v1/reports?limit=2', (r) => r.id)).flat()
      expect(ids).toHaveLength(3)
      expect(new Set(ids).size).toBe(3)
    })

    it('dead letters received at one instant: every one once, over pages of 2', async () => {
      const { status } = await fx.call('POST', '/v1/ingest', {
        events: [],
        deadLetters: Array.from({ length: 5 }, (_, i) => ({ gatewayId: 'gw-test', deviceId: 'btn-page-1', topic: 'sos/v1/btn-page-1/event', reason: 'malformed JSON', payload: Buffer.from(`{bad ${i}`).toString('base64'), receivedAt: t0 }))
      }, TOKENS.gateway)
      expect(status).toBe(200)
      const ids = (await allPages(fx, '/v1/dead-letters?limit=2&deviceId=btn-page-1', (d) => String(d.id))).flat()
      expect(ids).toHaveLength(5)
      expect(new Set(ids).size).toBe(5)
    })

    it('a page shorter than its limit is the last: no link', async () => {
      const response = await fx.app.inject({ method: 'GET', url: '/v1/alerts?limit=8', headers: { authorization: `Bearer ${TOKENS.admin}` } })
      expect(response.json()).toHaveLength(7)
      expect(response.headers.link).toBeUndefined()
    })

    it('refuses a cursor it did not write', async () => {
      const cursors = ['nonsense', '[1,2]', '["2026-01-01", "x"]', '["1.5", "x"]', '["", "x"]', '["-210866803200000001", "x"]', '["8640000000000000001", "x"]', '["99999999999999999999", "x"]', '["0", ""]',
        // A NUL, which no text column holds (the database refused it: a 500).
        '["1796572127440000", "a\\u0000b"]']
      for (const cursor of cursors.map((c, i) => i === 0 ? c : Buffer.from(c).toString('base64url'))) {
        for (const list of ['alerts', 'events', 'reports']) {
          const { status, body } = await fx.call('GET', `/v1/${list}?cursor=${cursor}`)
          expect(status, `${list} ${cursor}`).toBe(400)
          expect(body.message).toMatch(/cursor/)
        }
      }
      // The first and last instants a cursor may name are read, not refused.
      for (const time of ['-210866803200000000', '8640000000000000000']) {
        const { status } = await fx.call('GET', `/v1/events?cursor=${Buffer.from(JSON.stringify([time, 'x'])).toString('base64url')}`)
        expect(status, time).toBe(200)
      }
    })
  })
}
