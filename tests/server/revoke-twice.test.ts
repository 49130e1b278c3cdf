/**
 * Revoking is idempotent: an admin's script that retries a `DELETE` after a timeout hears 204
 * again, not a 404 it would read as "that id never existed". Only an id never provisioned or
 * issued is 404. Devices and tokens alike, and the OpenAPI document says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, type Fixture } from './fixture.js'

describe.each(databaseBackends.filter((b) => !b.timescale))('revoking twice on $name', (backend) => {
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

  it('answers 204 to a device revoked again, keeps its first revocation, and tells consoles once', async () => {
    await fx.provision('btn-revoke-twice')
    const changes: string[] = []
    fx.app.services.bus.on('device', ({ deviceId, change }) => { if (deviceId === 'btn-revoke-twice') changes.push(change) })

    expect((await fx.call('DELETE', '/v1/devices/btn-revoke-twice')).status).toBe(204)
    const revokedAt = (await fx.call('GET', '/v1/devices/btn-revoke-twice')).body.revokedAt
    expect(revokedAt).toEqual(expect.any(String))

    const again = await fx.call('DELETE', '/v1/devices/btn-revoke-twice')
    expect(again).toEqual({ status: 204, body: undefined })
    expect((await fx.call('GET', '/v1/devices/btn-revoke-twice')).body.revokedAt).toBe(revokedAt)
    expect(changes).toEqual(['revoked'])
  })

  it('still answers 404 to a device id never provisioned', async () => {
    const answer = await fx.call('DELETE', '/v1/devices/btn-never-there')
    expect(answer).toEqual({ status: 404, body: { statusCode: 404, code: 'NOT_FOUND', message: 'device btn-never-there not found' } })
  })

  it('answers 204 to a token revoked again, and 404 to a token id never issued', async () => {
    const issued = (await fx.call('POST', '/v1/tokens', { role: 'operator', name: 'night shift' })).body
    expect((await fx.call('DELETE', `/v1/tokens/${issued.id}`)).status).toBe(204)
    const revokedAt = (await fx.call('GET', '/v1/tokens')).body.find((t: { id: string }) => t.id === issued.id).revokedAt
    expect(revokedAt).toEqual(expect.any(String))

    expect(await fx.call('DELETE', `/v1/tokens/${issued.id}`)).toEqual({ status: 204, body: undefined })
    expect((await fx.call('GET', '/v1/tokens')).body.find((t: { id: string }) => t.id === issued.id).revokedAt).toBe(revokedAt)
    expect((await fx.call('GET', '/v1/alerts', undefined, issued.token)).status).toBe(401)

    const never = await fx.call('DELETE', '/v1/tokens/00000000-0000-4000-8000-000000000000')
    expect(never).toEqual({ status: 404, body: { statusCode: 404, code: 'NOT_FOUND', message: 'token 00000000-0000-4000-8000-000000000000 not found' } })
  })

  it('revokes once when two revocations of one device race, both answered 204', async () => {
    await fx.provision('btn-revoke-race')
    const answers = await Promise.all([1, 2, 3].map(() => fx.call('DELETE', '/v1/devices/btn-revoke-race')))
    expect(answers.map((a) => a.status)).toEqual([204, 204, 204])
  })

  it('says so in the OpenAPI document, for devices and tokens', async () => {
    const spec = (await fx.app.inject({ method: 'GET', url: '/docs/json' })).json()
    for (const path of ['/v1/devices/{id}', '/v1/tokens/{id}']) {
      const responses = spec.paths[path].delete.responses
      expect(Object.keys(responses).sort(), path).toEqual(['204', '404'])
      expect(responses['204'].description, path).toMatch(/already by an earlier one.*204 again/)
      expect(responses['404'].description, path).toMatch(/^No (device|token) was ever (provisioned|issued) with this id$/)
      const ref: string = responses['404'].content['application/json'].schema.$ref
      expect(spec.components.schemas[ref.replace('#/components/schemas/', '')], path).toMatchObject({ required: ['statusCode', 'code', 'message'] })
    }
  })
})
