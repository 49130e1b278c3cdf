import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DEVICE_ID_PATTERN } from '../../protocol/index.js'
import { DEVICE_KINDS, type DeviceStore } from '../devices/store.js'
import { IdParams, revocationResponses } from './schemas.js'
import type { Bus } from '../bus.js'

const NewDevice = Type.Object({
  id: Type.String({ pattern: DEVICE_ID_PATTERN.source }),
  kind: Type.Union(DEVICE_KINDS.map((k) => Type.Literal(k))),
  name: Type.String({ minLength: 1, maxLength: 120 }),
  zone: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  silent: Type.Optional(Type.Boolean()),
  pin: Type.Optional(Type.String({ pattern: '^[0-9]{4,8}$' }))
}, { additionalProperties: false })

/**
 * Device provisioning (admin) and the registry (operators, analysts). Each registry change goes
 * on the live stream too: a revoked device leaves every console at once, not at its next reload.
 */
export const deviceRoutes: FastifyPluginAsyncTypebox<{ devices: DeviceStore, bus: Bus }> = async (app, { devices, bus }) => {
  app.post('/v1/devices', {
    config: { roles: ['admin'] },
    schema: { tags: ['devices'], summary: 'Provision a device; its secret is in this answer only', body: NewDevice }
  }, async (request, reply) => {
    const { device, secret } = await devices.create(request.body)
    bus.emit('device', { deviceId: device.id, change: 'registered' })
    reply.status(201)
    return { ...device, secret }
  })

  app.get('/v1/devices', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['devices'],
      querystring: Type.Object({
        zone: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        kind: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 1000 }),
        // Devices come in id order: the next page starts after the last id of this one.
        after: Type.Optional(Type.String({ minLength: 1, maxLength: 128 }))
      })
    }
  }, async (request) => devices.list(request.query))

  app.get('/v1/devices/:id', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['devices'], params: IdParams }
  }, async (request) => devices.get(request.params.id))

  app.post('/v1/devices/:id/secret', {
    config: { roles: ['admin'] },
    schema: { tags: ['devices'], summary: 'Rotate the secret; the new one is in this answer only', params: IdParams }
  }, async (request) => {
    const { device, secret } = await devices.rotateSecret(request.params.id)
    bus.emit('device', { deviceId: device.id, change: 'secret_rotated' })
    return { ...device, secret }
  })

  app.delete('/v1/devices/:id', {
    config: { roles: ['admin'] },
    schema: {
      tags: ['devices'],
      summary: 'Revoke a device: gateways refuse it from then on; revoking it again answers 204 too',
      params: IdParams,
      response: revocationResponses('device', 'provisioned')
    }
  }, async (request, reply) => {
    const { alreadyRevoked } = await devices.revoke(request.params.id)
    // Consoles hear of the revocation once, not of each retry.
    if (!alreadyRevoked) bus.emit('device', { deviceId: request.params.id, change: 'revoked' })
    return reply.status(204).send(null)
  })
}
