import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ReportStore } from '../reports/store.js'
import { actor } from '../plugins/auth.js'
import { dateOrUndefined } from './schemas.js'
import { Page, readCursor, sendPage } from './paging.js'

const ReportStateSchema = Type.Union([Type.Literal('open'), Type.Literal('closed')])

const Report = Type.Object({
  id: Type.String({ description: 'The ticket id shown on the kiosk, e.g. R-7K3Q' }),
  deviceId: Type.String(),
  zone: Type.String(),
  category: Type.String(),
  text: Type.String(),
  state: ReportStateSchema,
  createdAt: Type.String({ format: 'date-time' }),
  closedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  closedBy: Type.Union([Type.String(), Type.Null()]),
  note: Type.Union([Type.String(), Type.Null()])
})

/** Resident reports from kiosks: a queue apart from emergencies (DESIGN.md §5). */
export const reportRoutes: FastifyPluginAsyncTypebox<{ reports: ReportStore }> = async (app, { reports }) => {
  app.get('/v1/reports', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['reports'],
      querystring: Type.Object({
        state: Type.Optional(ReportStateSchema),
        zone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        ...Page
      }),
      response: { 200: Type.Array(Report) }
    }
  }, async (request, reply) => {
    const { cursor, ...q } = request.query
    return sendPage(request, reply, await reports.list({ ...q, from: dateOrUndefined(q.from, 'from'), to: dateOrUndefined(q.to, 'to'), after: readCursor(cursor) }))
  })

  app.get('/v1/reports/:id', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['reports'], params: Type.Object({ id: Type.String({ maxLength: 16 }) }), response: { 200: Report } }
  }, async (request) => reports.get(request.params.id))

  app.post('/v1/reports/:id/close', {
    config: { roles: ['operator'] },
    schema: {
      tags: ['reports'],
      summary: 'Close a report (handled, referred, or nothing to do), with a note',
      params: Type.Object({ id: Type.String({ maxLength: 16 }) }),
      body: Type.Optional(Type.Object({ note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false })),
      response: { 200: Report }
    }
  }, async (request) => reports.close(request.params.id, actor(request).name, request.body?.note))
}
