import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { GatewayWatch } from '../supervision/gateway-watch.js'

const GatewayStatus = Type.Object({
  id: Type.String(),
  lastContactAt: Type.String({ format: 'date-time' }),
  silent: Type.Boolean({ description: 'not heard from for GATEWAY_LOST_AFTER' }),
  lost: Type.Boolean({ description: 'silent with devices behind it (for a shared id: one of its processes silent): its silent devices are reported offline' }),
  devices: Type.Integer({ description: 'registered devices it forwards for' }),
  sharedId: Type.Boolean({ description: 'two gateway processes called under this id over the same stretch of time, within a day: the id counts as lost as soon as one of them stops calling' }),
  outbox: Type.Union([Type.Null(), Type.Object({
    depth: Type.Integer({ description: 'events waiting to be forwarded' }),
    full: Type.Boolean({ description: 'at its bound: routine events are being shed' }),
    oldestAgeMs: Type.Union([Type.Integer(), Type.Null()]),
    reportedAt: Type.String({ format: 'date-time' })
  })])
})

/** The gateways as the server sees them: who calls, who is lost, whose outbox is backing up. */
export const gatewaysRoutes: FastifyPluginAsyncTypebox<{ gatewayWatch: GatewayWatch }> = async (app, { gatewayWatch }) => {
  app.get('/v1/gateways', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['gateways'], summary: 'Gateways that named themselves: last call, lost or not, devices, outbox', response: { 200: Type.Array(GatewayStatus) } }
  }, async () => gatewayWatch.list())
}
