/**
 * Property-based tests of what the HTTP API reads from the address itself, on every storage
 * engine: query-string filters and path ids holding any text (U+0000, lone surrogates, bad
 * percent escapes, very long) are answered with 2xx or 4xx, never a 5xx. Text PostgreSQL
 * cannot compare (a NUL in `?zone=`) once made a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from '../server/fixture.js'
import { runs } from './arbitraries.js'

/** Any UTF-16 code unit, lone surrogates and NUL included. */
const anyText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
  fc.constantFrom('\u0000', 'zone-a\u0000', '\ud800', 'x'.repeat(5000), '1', '-1', '9'.repeat(30), 'NaN', '2026-13-45T99:99:99Z')
)
/** The text as an address carries it: UTF-8 percent escapes, or raw escapes that decode to nothing valid. */
const inAddress = fc.oneof(
  anyText.map((text) => [...Buffer.from(text)].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')),
  fc.constantFrom('%00', '%ED%A0%80', '%C0%80', '%zz', '%', '%E2%82')
)

describe.each(databaseBackends.filter((b) => !b.timescale))('the API\'s addresses under fuzzing on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let operator: string

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
    operator = await fx.tokenFor('operator')
    await fx.provision('fz-addr')
    await fx.ingest({ events: [gatewayEvent('fz-addr', { seq: 1, type: 'press' }, Date.now())] })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const routes: Array<{ method: string, url: (v: string) => string, token?: () => string }> = [
    ...['state', 'kind', 'zone', 'deviceId', 'from', 'to', 'limit'].map((name) => ({ method: 'GET', url: (v: string) => `/v1/alerts?${name}=${v}` })),
    ...['deviceId', 'type', 'from', 'to', 'limit'].map((name) => ({ method: 'GET', url: (v: string) => `/v1/events?${name}=${v}` })),
    ...['state', 'zone'].map((name) => ({ method: 'GET', url: (v: string) => `/v1/reports?${name}=${v}` })),
    ...['zone', 'from', 'to'].map((name) => ({ method: 'GET', url: (v: string) => `/v1/stats/response-times?${name}=${v}` })),
    { method: 'GET', url: (v) => `/v1/devices?zone=${v}` },
    { method: 'GET', url: (v) => `/v1/announcements?zone=${v}` },
    { method: 'GET', url: (v) => `/v1/alerts/${v}` },
    { method: 'GET', url: (v) => `/v1/devices/${v}` },
    { method: 'GET', url: (v) => `/v1/reports/${v}` },
    { method: 'POST', url: (v) => `/v1/alerts/${v}/acknowledge`, token: () => operator },
    { method: 'POST', url: (v) => `/v1/reports/${v}/close`, token: () => operator },
    { method: 'DELETE', url: (v) => `/v1/tokens/${v}` },
    { method: 'GET', url: (v) => `/v1/gateway/downlink?after=${v}&wait=0`, token: () => TOKENS.gateway }
  ]

  it('answers any text in a filter or an id with 2xx or 4xx, never 5xx', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...routes), inAddress, async (route, value) => {
      const url = route.url(value)
      const response = await fx.app.inject({ method: route.method as 'GET', url, headers: { authorization: `Bearer ${route.token?.() ?? TOKENS.admin}` }, ...(route.method === 'POST' ? { payload: {} } : {}) })
      expect(response.statusCode, `${route.method} ${url.slice(0, 200)}: ${response.body.slice(0, 300)}`).toBeLessThan(500)
    }), { numRuns: runs(300) })
  })
})
