/**
 * A device provisioned wrong can be corrected (PATCH /v1/devices/{id}): a shop counter
 * provisioned loud instead of silent, the wrong zone, a typo in its name or position, a PIN the
 * owner wants changed. Revoking and provisioning the id again is no way out (the id is burnt
 * into the firmware and answers 409), and a loud "silent" alarm sounds during a hold-up.
 * What reads the settings sees the new ones: the acks the server sends, the gateways' credential
 * refresh (changed-since), cancels checked against the PIN. Alerts already open keep their zone.
 */
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import { topics } from '../../protocol/index.js'

describe.each(databaseBackends.filter((b) => !b.timescale))('correcting a device on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const logLines: Array<Record<string, unknown>> = []
  const t0 = Date.now() - 60_000

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    const logger = pino({ level: 'info' }, new Writable({
      write (chunk, _encoding, done) { logLines.push(JSON.parse(chunk.toString())); done() }
    }))
    fx = await buildFixture(opened.db, { logger, settings: { cancelWindowMs: 600_000 } })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const patch = (id: string, body: unknown, token?: string) => fx.call('PATCH', `/v1/devices/${id}`, body, token)
  const downlinkFor = async (topic: string) => {
    const { body } = await fx.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)
    return (body.messages as any[]).filter((m) => m.topic === topic).map((m) => m.payload)
  }

  it('makes a counter provisioned loud silent: answered with the device view, and the acks sent after carry silent', async () => {
    await fx.provision('shop-loud', { kind: 'counter', silent: false, pin: '4321' })
    const [press] = await fx.ingest({ events: [gatewayEvent('shop-loud', { seq: 1, type: 'press' }, t0)] })
    expect(press!.silent).toBeUndefined()

    const answer = await patch('shop-loud', { silent: true })
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ id: 'shop-loud', kind: 'counter', silent: true, hasPin: true, zone: 'zone-a', revokedAt: null })
    expect(answer.body).not.toHaveProperty('secret')
    expect(JSON.stringify(answer.body)).not.toMatch(/pin_hash|secret|4321/)
    expect((await fx.call('GET', '/v1/devices/shop-loud')).body.silent).toBe(true)

    // The operator acknowledges the alert opened while it was loud: the device hears it silently.
    expect((await fx.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`, {})).status).toBe(200)
    expect(await downlinkFor(topics.ack('shop-loud'))).toContainEqual({ seq: 1, state: 'acknowledged', alertId: press!.alertId, silent: true })
    // And the next event's answer to the gateway says silent (the gateway's ack to the device).
    const [beat] = await fx.ingest({ events: [gatewayEvent('shop-loud', { seq: 2, type: 'heartbeat' }, t0 + 1000)] })
    expect(beat).toMatchObject({ status: 'stored', silent: true })
  })

  it('moves a device to another zone and fixes its name and position; its open alert keeps the zone it happened in', async () => {
    await fx.provision('btn-moved', { zone: 'zone-a' })
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-moved', { seq: 1, type: 'press' }, t0)] })

    const answer = await patch('btn-moved', { zone: 'zone-b', name: 'Nguyễn Huệ pole 7', lat: 10.7745, lon: 106.7038 })
    expect(answer).toMatchObject({ status: 200, body: { zone: 'zone-b', name: 'Nguyễn Huệ pole 7', lat: 10.7745, lon: 106.7038 } })
    expect((await fx.call('GET', '/v1/devices?zone=zone-b')).body.map((d: { id: string }) => d.id)).toContain('btn-moved')
    expect((await fx.call('GET', `/v1/alerts/${press!.alertId}`)).body.zone).toBe('zone-a')
  })

  it('changes the cancel PIN (stored as a hash only) and removes it with pin: null', async () => {
    await fx.provision('shop-pin', { kind: 'counter', pin: '1111' })
    expect((await patch('shop-pin', { pin: '98765' })).body).toMatchObject({ hasPin: true })
    const rows = await fx.db.query<{ pin_hash: string }>("SELECT pin_hash FROM devices WHERE id = 'shop-pin'")
    expect(rows[0]!.pin_hash).not.toContain('98765')

    const [press] = await fx.ingest({ events: [gatewayEvent('shop-pin', { seq: 1, type: 'press' }, t0)] })
    const [old] = await fx.ingest({ events: [gatewayEvent('shop-pin', { seq: 2, type: 'cancel', pin: '1111' }, t0 + 1000)] })
    expect(old).toMatchObject({ ackState: 'rejected', reason: 'wrong PIN' })
    const [right] = await fx.ingest({ events: [gatewayEvent('shop-pin', { seq: 3, type: 'cancel', pin: '98765' }, t0 + 2000)] })
    expect(right).toMatchObject({ alertId: press!.alertId, alertState: 'cancelled' })

    expect((await patch('shop-pin', { pin: null })).body).toMatchObject({ hasPin: false })
    expect((await fx.call('GET', '/v1/devices/shop-pin')).body.hasPin).toBe(false)
  })

  it('is seen by the gateways\' next credential refresh (changed since their last one)', async () => {
    await fx.provision('kiosk-refresh', { kind: 'kiosk', zone: 'zone-a' })
    const { body: first } = await fx.call('GET', '/v1/gateway/devices', undefined, TOKENS.gateway)
    const since = encodeURIComponent(first.asOf)
    // Past the first answer's moment, so only a change made now can match.
    await new Promise((resolve) => setTimeout(resolve, 20))
    const before = (await fx.call('GET', `/v1/gateway/devices?changedSince=${since}`, undefined, TOKENS.gateway)).body.devices
    expect(before.map((d: { id: string }) => d.id)).not.toContain('kiosk-refresh')

    await patch('kiosk-refresh', { zone: 'zone-c' })
    const after = (await fx.call('GET', `/v1/gateway/devices?changedSince=${since}`, undefined, TOKENS.gateway)).body.devices
    expect(after.find((d: { id: string }) => d.id === 'kiosk-refresh')).toMatchObject({ zone: 'zone-c', silent: false, revoked: false })
  })

  it('logs who changed which fields, never a PIN, and tells consoles', async () => {
    await fx.provision('shop-log', { kind: 'counter', pin: '2222' })
    const changes: string[] = []
    fx.app.services.bus.on('device', ({ deviceId, change }) => { if (deviceId === 'shop-log') changes.push(change) })
    logLines.length = 0
    await patch('shop-log', { pin: '55667788', name: 'Tiệm vàng Kim Thành', zone: 'zone-a' })
    const line = logLines.find((l) => l.msg === 'device settings changed')
    // zone-a was its zone already: not a change.
    expect(line).toMatchObject({ deviceId: 'shop-log', by: 'admin', changed: ['name', 'pin'] })
    expect(JSON.stringify(logLines)).not.toContain('55667788')
    expect(changes).toEqual(['updated'])
  })

  it('refuses to change kind or id, saying why, and refuses what POST refuses', async () => {
    await fx.provision('btn-fixed')
    const kind = await patch('btn-fixed', { kind: 'counter', silent: true })
    expect(kind.status).toBe(400)
    expect(kind.body).toMatchObject({ statusCode: 400, code: 'VALIDATION', message: expect.stringMatching(/^kind cannot change: .*provision a new device/) })
    const id = await patch('btn-fixed', { id: 'btn-other' })
    expect(id.body).toMatchObject({ statusCode: 400, code: 'VALIDATION', message: expect.stringMatching(/^id cannot change: /) })

    for (const [body, message] of [
      [{ colour: 'red' }, /additional properties: colour/],
      [{}, /^nothing to change: give one or more of name, zone, lat, lon, silent, pin$/],
      [{ silent: null }, /silent must be boolean/],
      [{ silent: 'true' }, /silent must be boolean/],
      [{ pin: '12' }, /^body\/pin must match pattern/],
      [{ pin: 1234 }, /^body\/pin must be string,null$/],
      [{ lat: 91 }, /lat must be <= 90/],
      [{ zone: 'Zone A' }, /zone must match pattern/],
      [{ name: '' }, /name must NOT have fewer than 1 characters/]
    ] as const) {
      const answer = await patch('btn-fixed', body)
      expect(answer.status, JSON.stringify(body)).toBe(400)
      expect(answer.body, JSON.stringify(body)).toMatchObject({ statusCode: 400, code: 'VALIDATION', message: expect.stringMatching(message) })
    }
    // Nothing of it was applied.
    expect((await fx.call('GET', '/v1/devices/btn-fixed')).body).toMatchObject({ kind: 'button', silent: false, zone: 'zone-a', lat: 10.78 })
  })

  it('answers 404 for an id never provisioned and for a revoked device, saying which', async () => {
    expect(await patch('btn-never-there', { silent: true })).toEqual({
      status: 404, body: { statusCode: 404, code: 'NOT_FOUND', message: 'device btn-never-there not found' }
    })
    await fx.provision('btn-gone')
    expect((await fx.call('DELETE', '/v1/devices/btn-gone')).status).toBe(204)
    const revoked = await patch('btn-gone', { name: 'renamed' })
    expect(revoked.status).toBe(404)
    expect(revoked.body).toMatchObject({ statusCode: 404, code: 'DEVICE_REVOKED', message: expect.stringMatching(/^device btn-gone was revoked at .*cannot be changed/) })
    expect((await fx.call('GET', '/v1/devices/btn-gone')).body.name).toBe('Device btn-gone')
    // Nor given a new secret, nor provisioned again under its id: each says it was revoked
    // (they answered "not found" and "already exists" of a device GET shows; review 72).
    const rotated = await fx.call('POST', '/v1/devices/btn-gone/secret')
    expect(rotated.status).toBe(404)
    expect(rotated.body).toMatchObject({ code: 'DEVICE_REVOKED', message: expect.stringMatching(/^device btn-gone was revoked at /) })
    const again = await fx.call('POST', '/v1/devices', { id: 'btn-gone', kind: 'button', name: 'Again', zone: 'zone-a', lat: 10.78, lon: 106.7 })
    expect(again.status).toBe(409)
    expect(again.body.message).toMatch(/^device btn-gone was revoked at .*a revoked id is not given again/)
    expect((await fx.call('POST', '/v1/devices', { id: 'btn-roles-x', kind: 'button', name: 'X', zone: 'zone-a', lat: 10.78, lon: 106.7 })).status).toBe(201)
    expect((await fx.call('POST', '/v1/devices', { id: 'btn-roles-x', kind: 'button', name: 'X', zone: 'zone-a', lat: 10.78, lon: 106.7 })).body.message).toBe('device btn-roles-x already exists')
  })

  it('is for admins only', async () => {
    await fx.provision('btn-roles')
    const operator = await fx.tokenFor('operator')
    expect((await patch('btn-roles', { silent: true }, operator)).status).toBe(403)
    expect((await patch('btn-roles', { silent: true }, TOKENS.gateway)).status).toBe(403)
    expect((await fx.call('GET', '/v1/devices/btn-roles')).body.silent).toBe(false)
  })
})
