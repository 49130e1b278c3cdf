import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Announcements } from '../announcements/service.js'
import { actor } from '../plugins/auth.js'
import { IdParams } from './schemas.js'

const NewAnnouncement = Type.Object({
  zone: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  title: Type.String({ minLength: 1, maxLength: 120 }),
  body: Type.String({ minLength: 1, maxLength: 2000 }),
  lang: Type.String({ pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$', description: 'BCP 47, e.g. vi or en' }),
  expiresAt: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

const announcementFields = {
  id: Type.String(),
  zone: Type.String(),
  title: Type.String(),
  body: Type.String(),
  lang: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String()
}
const Announcement = Type.Object(announcementFields)

const PostedAnnouncement = Type.Object({
  ...announcementFields,
  kiosks: Type.Integer({ minimum: 0, description: 'Kiosks registered in the zone (not revoked) to receive it; 0 most likely means a mistyped zone' })
})

/** Announcements from the ward to the kiosks of a zone (retained MQTT message). */
export const announcementRoutes: FastifyPluginAsyncTypebox<{ announcements: Announcements }> = async (app, { announcements }) => {
  app.post('/v1/announcements', {
    config: { roles: ['operator'] },
    schema: {
      tags: ['announcements'],
      summary: 'Announce to the kiosks of a zone; the answer says how many kiosks the zone has',
      body: NewAnnouncement,
      response: { 201: PostedAnnouncement }
    }
  }, async (request, reply) => {
    const created = await announcements.create(request.body, actor(request).name)
    reply.status(201)
    return created
  })

  app.delete('/v1/announcements/:id', {
    config: { roles: ['operator'] },
    schema: {
      tags: ['announcements'],
      summary: 'Withdraw an announcement: it ends now, and the zone\'s kiosks are shown the one before it still running, or nothing',
      params: IdParams,
      response: { 200: Announcement, 404: Type.Ref('Error', { description: 'No announcement with this id' }) }
    }
  }, async (request) => announcements.withdraw(request.params.id))

  app.get('/v1/announcements', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['announcements'],
      querystring: Type.Object({
        zone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 })
      }),
      response: { 200: Type.Array(Announcement) }
    }
  }, async (request) => announcements.list(request.query))
}
