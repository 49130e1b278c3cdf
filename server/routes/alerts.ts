import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ALERT_KINDS, ALERT_STATES, OUTCOMES, type OperatorAction } from '../alerts/model.js'
import type { AlertStore } from '../alerts/store.js'
import type { AlertLifecycle } from '../alerts/lifecycle.js'
import { actor } from '../plugins/auth.js'
import { IdParams, dateOrUndefined } from './schemas.js'
import { Page, readCursor, sendPage } from './paging.js'

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)))
const Note = Type.Optional(Type.String({ maxLength: 2000 }))
/**
 * The alert's `version` the operator acted on (what GET answered). A resolve of an alert that
 * changed since (a press joined, another desk acted, it escalated) is refused 409 ALERT_CHANGED
 * and changes nothing; acknowledge and dispatch take it too, and go through whatever changed.
 */
const ExpectedVersion = Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }))

/** Alerts for operators (act) and analysts (read). */
export const alertRoutes: FastifyPluginAsyncTypebox<{ alerts: AlertStore, lifecycle: AlertLifecycle }> = async (app, { alerts, lifecycle }) => {
  app.get('/v1/alerts', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['alerts'],
      querystring: Type.Object({
        state: Type.Optional(literals(ALERT_STATES)),
        kind: Type.Optional(literals(ALERT_KINDS)),
        zone: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        ...Page
      })
    }
  }, async (request, reply) => {
    const { cursor, ...q } = request.query
    return sendPage(request, reply, await alerts.list({ ...q, from: dateOrUndefined(q.from, 'from'), to: dateOrUndefined(q.to, 'to'), after: readCursor(cursor) }))
  })

  app.get('/v1/alerts/:id', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['alerts'], params: IdParams }
  }, async (request) => alerts.get(request.params.id))

  const act = (action: OperatorAction) => async (request: { params: { id: string }, body?: { note?: string, outcome?: typeof OUTCOMES[number], expectedVersion?: number } } & Parameters<typeof actor>[0]) => {
    const body = request.body
    await lifecycle.act(request.params.id, action, { actor: actor(request).name, note: body?.note, outcome: body?.outcome, expectedVersion: body?.expectedVersion })
    return alerts.get(request.params.id)
  }

  // Only a note: an outcome is what a resolution says (an acknowledged alert carrying one left
  // the response-time KPIs as if it were resolved). No property beyond these is taken: one
  // misspelt (`notes`) was dropped in silence, and the audit trail lost what it said.
  const simpleAction = { config: { roles: ['operator' as const] }, schema: { tags: ['alerts'], params: IdParams, body: Type.Optional(Type.Object({ note: Note, expectedVersion: ExpectedVersion }, { additionalProperties: false })) } }
  app.post('/v1/alerts/:id/acknowledge', simpleAction, act('acknowledge'))
  app.post('/v1/alerts/:id/dispatch', simpleAction, act('dispatch'))
  app.post('/v1/alerts/:id/resolve', {
    config: { roles: ['operator'] },
    schema: { tags: ['alerts'], params: IdParams, body: Type.Object({ outcome: literals(OUTCOMES), note: Note, expectedVersion: ExpectedVersion }, { additionalProperties: false }) }
  }, act('resolve'))
}
