import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DEVICE_ID_PATTERN } from '../../protocol/index.js'
import { DEVICE_KINDS, type DeviceStore } from '../devices/store.js'
import { IdParams, NOT_BLANK, revocationResponses } from './schemas.js'
import { actor } from '../plugins/auth.js'
import { HttpError } from '../plugins/errors.js'
import type { Bus } from '../bus.js'

const PIN_PATTERN = '^[0-9]{4,8}$'

/** The fields an admin sets, at provisioning and when correcting a device later: one rule each. */
const Fields = {
  name: Type.String({ minLength: 1, maxLength: 120, pattern: NOT_BLANK }),
  zone: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  silent: Type.Boolean(),
  pin: Type.String({ pattern: PIN_PATTERN })
}

const NewDevice = Type.Object({
  id: Type.String({ pattern: DEVICE_ID_PATTERN.source }),
  kind: Type.Union(DEVICE_KINDS.map((k) => Type.Literal(k))),
  name: Fields.name,
  zone: Fields.zone,
  lat: Fields.lat,
  lon: Fields.lon,
  silent: Type.Optional(Fields.silent),
  pin: Type.Optional(Fields.pin)
}, { additionalProperties: false })

/** A correction: any of the settings, at least one; `pin: null` removes the PIN (a device may have none). */
const DeviceChanges = Type.Object({
  name: Type.Optional(Fields.name),
  zone: Type.Optional(Fields.zone),
  lat: Type.Optional(Fields.lat),
  lon: Type.Optional(Fields.lon),
  silent: Type.Optional(Fields.silent),
  // One type list rather than a union: a wrong PIN is answered by its pattern alone.
  pin: Type.Optional(Type.Unsafe<string | null>({ type: ['string', 'null'], pattern: PIN_PATTERN }))
}, { additionalProperties: false, minProperties: 1 })
const CHANGEABLE = Object.keys(DeviceChanges.properties).join(', ')

/**
 * What a device is and which one it is are burnt into its firmware (its client id, what its
 * board does): changed here, the registry would describe another device than the one calling.
 */
const FIXED = {
  id: 'id cannot change: it is the device\'s MQTT identity in its firmware; provision a new device with the new id',
  kind: 'kind cannot change: it is what the hardware is (button, kiosk, counter); provision a new device with its own id'
} as const

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
        kind: Type.Optional(Type.Union(DEVICE_KINDS.map((k) => Type.Literal(k)))),
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

  app.patch('/v1/devices/:id', {
    config: { roles: ['admin'] },
    // Before the schema, which would only call them unknown properties: say why they are fixed.
    preValidation: async (request) => {
      const body = request.body
      if (typeof body !== 'object' || body === null) return
      for (const field of Object.keys(FIXED) as Array<keyof typeof FIXED>) {
        if (Object.hasOwn(body, field)) throw new HttpError(400, 'VALIDATION', FIXED[field])
      }
      if (!Array.isArray(body) && Object.keys(body).length === 0) throw new HttpError(400, 'VALIDATION', `nothing to change: give one or more of ${CHANGEABLE}`)
    },
    schema: {
      tags: ['devices'],
      summary: 'Correct a device\'s name, zone, position, silent flag or PIN; gateways apply it at their next credential refresh',
      params: IdParams,
      body: DeviceChanges
    }
  }, async (request) => {
    const { device, changed } = await devices.update(request.params.id, request.body)
    // No audit table for devices: the log says who changed which fields (never a PIN's value).
    request.log.info({ deviceId: device.id, by: actor(request).name, changed }, 'device settings changed')
    if (changed.length > 0) bus.emit('device', { deviceId: device.id, change: 'updated' })
    return device
  })

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
