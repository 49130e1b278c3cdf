/**
 * The operator API (DESIGN.md §5): roles, secrets shown once, announcements to kiosks,
 * response-time KPIs per zone, readiness and metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import { topics } from '../../protocol/index.js'
import { migrations } from '../../server/db/migrations.js'

describe('operator API', () => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let operator: string
  let analyst: string
  let secret: string
  const seen: string[] = []
  const t0 = Date.now() - 3_600_000

  beforeAll(async () => {
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
    // Every answer the API gives from here on is kept, to look for the device secret in it.
    const call = fx.call
    fx.call = async (...args: Parameters<Fixture['call']>) => {
      const response = await call(...args)
      seen.push(JSON.stringify(response.body))
      return response
    }
    secret = (await fx.provision('btn-api', { pin: '2468' })).secret
    operator = await fx.tokenFor('operator')
    analyst = await fx.tokenFor('analyst')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('answers 401 without a token and 403 to a role that may not act', async () => {
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-api', { seq: 1, type: 'press' }, t0)] })
    const noToken = await fx.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`, {}, '')
    expect(noToken).toEqual({ status: 401, body: { statusCode: 401, code: 'UNAUTHORIZED', message: 'missing or invalid bearer token' } })
    expect((await fx.call('GET', '/v1/alerts', undefined, 'not-a-token')).status).toBe(401)

    const byAnalyst = await fx.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`, {}, analyst)
    expect(byAnalyst.status).toBe(403)
    expect(byAnalyst.body.code).toBe('FORBIDDEN')
    expect((await fx.call('GET', `/v1/alerts/${press!.alertId}`)).body.state).toBe('open')
    // Reading is fine for an analyst; gateways may not read alerts; operators may not provision.
    expect((await fx.call('GET', '/v1/alerts', undefined, analyst)).status).toBe(200)
    expect((await fx.call('GET', '/v1/alerts', undefined, TOKENS.gateway)).status).toBe(403)
    expect((await fx.call('POST', '/v1/devices', { id: 'btn-x', kind: 'button', name: 'x', zone: 'zone-a', lat: 0, lon: 0 }, operator)).status).toBe(403)
    expect((await fx.call('POST', '/v1/announcements', { zone: 'zone-a', title: 't', body: 'b', lang: 'vi', expiresAt: new Date(Date.now() + 3_600_000).toISOString() }, analyst)).status).toBe(403)

    const byOperator = await fx.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`, {}, operator)
    expect(byOperator.status).toBe(200)
    expect(byOperator.body.transitions.at(-1)).toMatchObject({ to: 'acknowledged', actor: 'operator-1' })
    // Illegal transitions are conflicts.
    expect((await fx.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`, {}, operator)).status).toBe(409)
  })

  it('stores announcements and queues them as retained messages for the zone\'s kiosks', async () => {
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString()
    const { status, body } = await fx.call('POST', '/v1/announcements',
      { zone: 'zone-a', title: 'Cúp nước', body: 'Thứ bảy 8:00–12:00', lang: 'vi', expiresAt }, operator)
    expect(status).toBe(201)
    expect(body).toMatchObject({ zone: 'zone-a', lang: 'vi', createdBy: 'operator-1', expiresAt })
    const { body: downlink } = await fx.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)
    const message = (downlink.messages as any[]).find((m) => m.topic === topics.announce('zone-a'))
    expect(message).toMatchObject({ retain: true, payload: { id: body.id, title: 'Cúp nước', body: 'Thứ bảy 8:00–12:00', lang: 'vi', expiresAt } })
    expect((await fx.call('GET', '/v1/announcements?zone=zone-a', undefined, analyst)).body).toHaveLength(1)

    const expired = await fx.call('POST', '/v1/announcements', { zone: 'zone-a', title: 't', body: 'b', lang: 'en', expiresAt: new Date(Date.now() - 1000).toISOString() }, operator)
    expect(expired.status).toBe(400)
    expect((await fx.call('POST', '/v1/announcements', { zone: 'Zone A!', title: 't', body: 'b', lang: 'en', expiresAt }, operator)).status).toBe(400)
  })

  it('gives time to acknowledge and to resolve per zone, tests and drills excluded', async () => {
    await fx.provision('btn-b1', { zone: 'zone-b' })
    await fx.provision('btn-b2', { zone: 'zone-b' })
    const [real] = await fx.ingest({ events: [gatewayEvent('btn-b1', { seq: 1, type: 'press' }, t0)] })
    const [drill] = await fx.ingest({ events: [gatewayEvent('btn-b2', { seq: 1, type: 'press' }, t0)] })
    await fx.ingest({ events: [gatewayEvent('btn-b2', { seq: 2, type: 'test' }, t0)] })
    for (const id of [real!.alertId, drill!.alertId]) expect((await fx.call('POST', `/v1/alerts/${id}/acknowledge`, {}, operator)).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${real!.alertId}/resolve`, { outcome: 'real' }, operator)).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${drill!.alertId}/resolve`, { outcome: 'test', note: 'drill' }, operator)).status).toBe(200)

    const { status, body } = await fx.call('GET', '/v1/stats/response-times?zone=zone-b', undefined, analyst)
    expect(status).toBe(200)
    expect(body).toHaveLength(1)
    expect(body[0]).toMatchObject({ zone: 'zone-b', kind: 'panic', alerts: 1, responded: 1, resolved: 1 })
    // Pressed an hour ago (the gateway's time), raised and handled now: the operator's seconds
    // count from the raise, the person's wait from the press.
    expect(body[0].ackSecondsAvg).toBeLessThan(60)
    expect(body[0].waitSecondsAvg).toBeGreaterThanOrEqual(3600)
    expect(body[0].resolveSecondsAvg).toBeGreaterThanOrEqual(body[0].ackSecondsAvg)
    expect(body[0].ackSecondsP50).toBe(body[0].ackSecondsAvg)
  })

  it('reports readiness and server metrics', async () => {
    const ready = await fx.call('GET', '/readyz', undefined, '')
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', schemaVersion: migrations.length } })
    const metrics = await fx.app.inject({ url: '/metrics' })
    expect(metrics.statusCode).toBe(200)
    expect(metrics.body).toMatch(/sos_ingest_events_total\{type="press",status="stored"\} \d+/)
    expect(metrics.body).toMatch(/sos_alerts_opened_total\{kind="panic"\} 3/)
    expect(metrics.body).toMatch(/sos_alert_transitions_total\{state="acknowledged"\} 3/)
    expect(metrics.body).toMatch(/sos_alerts_active\{kind="panic",state="acknowledged"\} 1/)
    expect(metrics.body).toMatch(/sos_ingest_batch_seconds_count \d+/)
    // The process's own, collected once per process and shown by every app.
    expect(metrics.body).toMatch(/process_cpu_user_seconds_total \d/)
    expect(metrics.body).toMatch(/nodejs_eventloop_lag_seconds \d/)
  })

  it('never shows a device secret again after creation', async () => {
    const responses = [
      await fx.call('GET', '/v1/devices'),
      await fx.call('GET', '/v1/devices/btn-api'),
      await fx.call('GET', '/v1/devices/btn-api', undefined, operator),
      await fx.call('GET', '/v1/gateway/devices', undefined, TOKENS.gateway),
      await fx.call('GET', '/v1/events?deviceId=btn-api'),
      await fx.call('GET', '/v1/alerts?deviceId=btn-api'),
      await fx.call('POST', '/v1/devices/btn-api/secret')
    ]
    expect(responses.every((r) => r.status === 200)).toBe(true)
    const rotated = responses.at(-1)!.body.secret as string
    expect(rotated).toMatch(/^[A-Za-z0-9_-]{32}$/)
    await fx.call('GET', '/v1/devices/btn-api')
    // The first secret was in the creation answer only; the rotated one in the rotation answer only.
    // (provision answered before recording started: `seen` holds every answer after creation.)
    const after = seen
    expect(after.length).toBeGreaterThan(20)
    expect(after.some((p) => p.includes(secret))).toBe(false)
    expect(after.filter((p) => p.includes(rotated))).toHaveLength(1)
    // Nor any hash of the PIN or secret outside the gateway's credential feed.
    expect(JSON.stringify(responses[1]!.body)).not.toMatch(/scrypt|secret|pin_hash/i)
  })

  it('takes an outcome only when resolving, and answers 400 to a date that names no instant', async () => {
    await fx.provision('btn-c1', { zone: 'zone-c' })
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-c1', { seq: 1, type: 'press' }, t0)] })
    const id = press!.alertId
    // An outcome on an acknowledgement took the live alert out of the KPIs (or, invalid, a 500).
    for (const outcome of ['test', 'bogus']) {
      const answer = await fx.call('POST', `/v1/alerts/${id}/acknowledge`, { outcome }, operator)
      expect(answer).toMatchObject({ status: 400, body: { statusCode: 400, code: 'VALIDATION' } })
    }
    expect((await fx.call('POST', `/v1/alerts/${id}/acknowledge`, { note: 'on it' }, operator)).status).toBe(200)
    expect((await fx.call('POST', `/v1/alerts/${id}/dispatch`, { outcome: 'real' }, operator)).status).toBe(400)
    const { body: alert } = await fx.call('GET', `/v1/alerts/${id}`, undefined, operator)
    expect(alert).toMatchObject({ state: 'acknowledged', outcome: null })
    expect((await fx.call('GET', '/v1/stats/response-times?zone=zone-c', undefined, analyst)).body[0]).toMatchObject({ alerts: 1, responded: 1, resolved: 0 })

    // A leap second passes the date-time format but is no JavaScript date; year 0 is no PostgreSQL year.
    for (const when of ['2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z']) {
      const q = encodeURIComponent(when)
      for (const [path, token] of [[`/v1/alerts?from=${q}`, operator], [`/v1/events?to=${q}`, analyst], [`/v1/reports?from=${q}`, operator],
        [`/v1/stats/response-times?from=${q}`, analyst], [`/v1/gateway/devices?changedSince=${q}`, TOKENS.gateway]] as const) {
        const answer = await fx.call('GET', path, undefined, token)
        expect({ path, status: answer.status, code: answer.body.code }).toEqual({ path, status: 400, code: 'VALIDATION' })
      }
    }
  })

  it('answers 400 to an empty filter rather than an empty list that looks like a quiet ward', async () => {
    for (const [path, token] of [['/v1/alerts?zone=', operator], ['/v1/alerts?deviceId=', operator], ['/v1/devices?zone=', TOKENS.admin],
      ['/v1/events?deviceId=', analyst], ['/v1/reports?zone=', operator], ['/v1/stats/response-times?zone=', analyst]] as const) {
      const answer = await fx.call('GET', path, undefined, token)
      expect({ path, status: answer.status, code: answer.body.code }).toEqual({ path, status: 400, code: 'VALIDATION' })
    }
  })

  it('refuses the device id announce: its topics would be the zones\' announcements', async () => {
    const answer = await fx.call('POST', '/v1/devices', { id: 'announce', kind: 'button', name: 'x', zone: 'ack', lat: 0, lon: 0 })
    expect(answer).toMatchObject({ status: 400, body: { code: 'VALIDATION' } })
  })

  it('shows text as it reads: bidi overrides and control characters in names and reports become U+FFFD', async () => {
    // A resident's "call back 0901234567" read as 7654321090; a name turning the banner around.
    const name = 'Cổng chợ \u202eA1-dpa\u0007'
    expect((await fx.call('POST', '/v1/devices', { id: 'ksk-bidi', kind: 'kiosk', name, zone: 'zone-a', lat: 0, lon: 0 })).status).toBe(201)
    expect((await fx.call('GET', '/v1/devices/ksk-bidi')).body.name).toBe('Cổng chợ \uFFFDA1-dpa\uFFFD')
    const text = 'Gọi lại số \u202e0901234567\u202c\u001b[2J\nxin cảm ơn'
    await fx.ingest({ events: [gatewayEvent('ksk-bidi', { seq: 1, type: 'report', report: { category: 'other', text } }, t0)] })
    const { body: reports } = await fx.call('GET', '/v1/reports?zone=zone-a', undefined, operator)
    expect(reports.find((r: { deviceId: string }) => r.deviceId === 'ksk-bidi').text).toBe('Gọi lại số \uFFFD0901234567\uFFFD\uFFFD[2J\nxin cảm ơn')
  })

  it('sends every answer with nosniff, no framing and no referrer, and the docs page with a policy of its own', async () => {
    for (const url of ['/v1/alerts', '/healthz', '/docs/json', '/nowhere']) {
      const { headers } = await fx.app.inject({ url, headers: { authorization: `Bearer ${operator}` } })
      expect({ url, nosniff: headers['x-content-type-options'], frame: headers['x-frame-options'], referrer: headers['referrer-policy'] })
        .toEqual({ url, nosniff: 'nosniff', frame: 'DENY', referrer: 'no-referrer' })
    }
    const docs = await fx.app.inject({ url: '/docs/' })
    expect(docs.statusCode).toBe(200)
    expect(docs.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(docs.headers['content-security-policy']).not.toContain('upgrade-insecure-requests')
  })

  it('pages through the devices in id order with after', async () => {
    const all = (await fx.call('GET', '/v1/devices', undefined, operator)).body.map((d: { id: string }) => d.id)
    expect(all.length).toBeGreaterThan(3)
    const first = (await fx.call('GET', '/v1/devices?limit=2', undefined, operator)).body.map((d: { id: string }) => d.id)
    const next = (await fx.call('GET', `/v1/devices?limit=2&after=${first[1]}`, undefined, operator)).body.map((d: { id: string }) => d.id)
    expect([...first, ...next]).toEqual(all.slice(0, 4))
  })
})
