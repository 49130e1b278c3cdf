import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Announcements } from '../announcements/service.js'
import { actor } from '../plugins/auth.js'

const NewAnnouncement = Type.Object({
  zone: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  title: Type.String({ minLength: 1, maxLength: 120 }),
  body: Type.String({ minLength: 1, maxLength: 2000 }),
  lang: Type.String({ pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$', description: 'BCP 47, e.g. vi or en' }),
  expiresAt: Type.String({ format: 'date-time' })
}, { additionalProperties: false })

const Announcement = Type.Object({
  id: Type.String(),
  zone: Type.String(),
  title: Type.String(),
  body: Type.String(),
  lang: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String()
})

/** Announcements from the ward to the kiosks of a zone (retained MQTT message). */
export const announcementRoutes: FastifyPluginAsyncTypebox<{ announcements: Announcements }> = async (app, { announcements }) => {
  app.post('/v1/announcements', {
    config: { roles: ['operator'] },
    schema: { tags: ['announcements'], body: NewAnnouncement, response: { 201: Announcement } }
  }, async (request, reply) => {
    const created = await announcements.create(request.body, actor(request).name)
    reply.status(201)
    return created
  })

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
