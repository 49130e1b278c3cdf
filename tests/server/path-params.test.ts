/**
 * Ids in paths are answered by the routes themselves, after authentication, in the API's error
 * format. The router's own 100-character limit cut in before: a 101-character id got a 414 in
 * fastify's format, with no token asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PGlite } from '@electric-sql/pglite'
import { wrapPglite } from '../../server/db/pglite.js'
import { buildFixture, type Fixture } from './fixture.js'

describe('ids in paths', () => {
  let fx: Fixture
  beforeAll(async () => { fx = await buildFixture(wrapPglite(await PGlite.create())) }, 120_000)
  afterAll(async () => { await fx?.app.close(); await fx?.db.close() })

  it('asks for a token first, then answers a long id as the route does', async () => {
    for (const id of ['d'.repeat(101), 'd'.repeat(300)]) {
      expect((await fx.call('GET', `/v1/devices/${id}`, undefined, '')).status).toBe(401)
      const { status, body } = await fx.call('GET', `/v1/devices/${id}`)
      expect([400, 404]).toContain(status)
      expect(body).toMatchObject({ statusCode: status, message: expect.any(String) })
      expect((await fx.call('GET', `/v1/alerts/${id}`)).status).toBeLessThan(414)
    }
  })
})
