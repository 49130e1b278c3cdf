import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ALERT_KINDS, ALERT_STATES, OUTCOMES, type OperatorAction } from '../alerts/model.js'
import type { AlertStore } from '../alerts/store.js'
import type { AlertLifecycle } from '../alerts/lifecycle.js'
import { actor } from '../plugins/auth.js'
import { IdParams, Window, dateOrUndefined } from './schemas.js'

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)))
const Note = Type.Optional(Type.String({ maxLength: 2000 }))

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
        ...Window
      })
    }
  }, async (request) => {
    const q = request.query
    return alerts.list({ ...q, from: dateOrUndefined(q.from, 'from'), to: dateOrUndefined(q.to, 'to') })
  })

  app.get('/v1/alerts/:id', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['alerts'], params: IdParams }
  }, async (request) => alerts.get(request.params.id))

  const act = (action: OperatorAction) => async (request: { params: { id: string }, body?: { note?: string, outcome?: typeof OUTCOMES[number] } } & Parameters<typeof actor>[0]) => {
    await lifecycle.act(request.params.id, action, { actor: actor(request).name, note: request.body?.note, outcome: request.body?.outcome })
    return alerts.get(request.params.id)
  }

  // Only a note: an outcome is what a resolution says (an acknowledged alert carrying one left
  // the response-time KPIs as if it were resolved).
  const simpleAction = { config: { roles: ['operator' as const] }, schema: { tags: ['alerts'], params: IdParams, body: Type.Optional(Type.Object({ note: Note }, { additionalProperties: false })) } }
  app.post('/v1/alerts/:id/acknowledge', simpleAction, act('acknowledge'))
  app.post('/v1/alerts/:id/dispatch', simpleAction, act('dispatch'))
  app.post('/v1/alerts/:id/resolve', {
    config: { roles: ['operator'] },
    schema: { tags: ['alerts'], params: IdParams, body: Type.Object({ outcome: literals(OUTCOMES), note: Note }) }
  }, act('resolve'))
}
