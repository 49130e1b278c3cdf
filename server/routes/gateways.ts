import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { GatewayWatch } from '../supervision/gateway-watch.js'

const GatewayStatus = Type.Object({
  id: Type.String(),
  lastContactAt: Type.String({ format: 'date-time' }),
  silent: Type.Boolean({ description: 'not heard from for GATEWAY_LOST_AFTER' }),
  lost: Type.Boolean({ description: 'silent with devices behind it: its silent devices are reported offline' }),
  devices: Type.Integer({ description: 'registered devices it forwards for' }),
  sharedId: Type.Boolean({ description: 'two gateway processes called by turns under this id within GATEWAY_LOST_AFTER: the loss of either goes unseen while the other calls' }),
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
