import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db/database.js'
import { Window, dateOrUndefined } from './schemas.js'
import { isoTime } from '../db/iso-times.js'
import { paged, positionOf, afterPosition } from '../db/keyset-paging.js'
import { Page, readCursor, sendPage } from './paging.js'

const seconds = Type.Union([Type.Number(), Type.Null()])

/**
 * Read-only views for analysts and maintainers: response KPIs per zone and kind (from the
 * `alert_response_times` view: tests, drills and cancelled alerts left out) and dead letters.
 * The KPIs measure operators: an alert the system closed by itself (a device back online) has
 * no time to acknowledge unless an operator answered it first, and no time to resolve; it still
 * counts among `alerts` and `resolved`, not among `responded` nor `resolvedByOperator`.
 * Operators are timed from when the alert reached them (`raised_at`, the server's clock), never
 * from the press, which a gateway may have held for a while; the person's wait, from the press
 * to the first response, is given apart (`waitSeconds*`): it measures the whole system.
 */
export const insightRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.get('/v1/stats/response-times', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['stats'],
      summary: 'Operators\' time to acknowledge and to resolve per zone and kind, for alerts raised (reaching the server) in [from, to)',
      querystring: Type.Object({
        zone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        from: Type.Optional(Type.String({ format: 'date-time' })),
        to: Type.Optional(Type.String({ format: 'date-time' }))
      }),
      response: {
        200: Type.Array(Type.Object({
          zone: Type.String(),
          kind: Type.String(),
          alerts: Type.Integer({ description: 'alerts raised in the window (created on the server: an alert reaches operators then)' }),
          responded: Type.Integer({ description: 'of those, answered by an operator: acknowledged, dispatched or resolved (the ackSeconds population)' }),
          resolved: Type.Integer({ description: 'of those, resolved, by an operator or automatically (a device back online)' }),
          resolvedByOperator: Type.Integer({ description: 'of those, resolved by an operator (the resolveSeconds population)' }),
          ackSecondsAvg: seconds,
          ackSecondsP50: seconds,
          ackSecondsP90: seconds,
          resolveSecondsAvg: seconds,
          resolveSecondsP50: seconds,
          resolveSecondsP90: seconds,
          waitSecondsAvg: Type.Union([Type.Number(), Type.Null()], { description: 'the person\'s wait: from the press (gateway receive time) to the first operator response, over the ackSeconds population; includes any time the press spent on its way' }),
          waitSecondsP90: seconds
        }))
      }
    }
  }, async (request) => {
    const q = request.query
    return db.query(`
      -- ack_seconds and resolve_seconds are NULL unless an operator acted (migration 6), so their
      -- counts are the populations of their averages and percentiles. Both count from raised_at,
      -- wait_seconds from the press (migration 14); the window is on raised_at, which never moves.
      SELECT zone, kind, count(*)::int8 AS alerts, count(ack_seconds)::int8 AS responded,
        count(resolved_at)::int8 AS resolved, count(resolve_seconds)::int8 AS "resolvedByOperator",
        avg(ack_seconds) AS "ackSecondsAvg",
        percentile_cont(0.5) WITHIN GROUP (ORDER BY ack_seconds) AS "ackSecondsP50",
        percentile_cont(0.9) WITHIN GROUP (ORDER BY ack_seconds) AS "ackSecondsP90",
        avg(resolve_seconds) AS "resolveSecondsAvg",
        percentile_cont(0.5) WITHIN GROUP (ORDER BY resolve_seconds) AS "resolveSecondsP50",
        percentile_cont(0.9) WITHIN GROUP (ORDER BY resolve_seconds) AS "resolveSecondsP90",
        avg(wait_seconds) AS "waitSecondsAvg",
        percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_seconds) AS "waitSecondsP90"
      FROM alert_response_times
      WHERE ($1::text IS NULL OR zone = $1) AND ($2::timestamptz IS NULL OR raised_at >= $2) AND ($3::timestamptz IS NULL OR raised_at < $3)
      GROUP BY zone, kind ORDER BY zone, kind`,
    [q.zone ?? null, dateOrUndefined(q.from, 'from') ?? null, dateOrUndefined(q.to, 'to') ?? null])
  })

  // Admin only: a refused payload may hold what a device should not have sent in clear (a PIN).
  app.get('/v1/dead-letters', {
    config: { roles: ['admin'] },
    schema: {
      tags: ['operations'],
      summary: 'Device publishes the gateways refused, with the reason (payload: first 4 KiB, base64)',
      querystring: Type.Object({
        deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        gatewayId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        ...Page
      }),
      response: {
        200: Type.Array(Type.Object({
          id: Type.Integer(),
          gatewayId: Type.String(),
          deviceId: Type.Union([Type.String(), Type.Null()]),
          topic: Type.String(),
          reason: Type.String(),
          payload: Type.String(),
          receivedAt: Type.String({ format: 'date-time' })
        }))
      }
    }
  }, async (request, reply) => {
    const q = request.query
    const after = readCursor(q.cursor, /^\d{1,18}$/)
    const rows = await db.query<{ id: number, gateway_id: string, device_id: string | null, topic: string, reason: string, payload: string, received_at: Date, position: string | null }>(`
      SELECT id, gateway_id, device_id, topic, reason, payload, received_at, ${positionOf('received_at')} FROM dead_letters
      WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR gateway_id = $2)
        AND ($3::timestamptz IS NULL OR received_at >= $3) AND ($4::timestamptz IS NULL OR received_at < $4)
        AND ${afterPosition({ time: 'received_at', id: 'id', idType: 'int8' }, { time: '$6', id: '$7' })}
      ORDER BY received_at DESC, id DESC LIMIT $5`,
    [q.deviceId ?? null, q.gatewayId ?? null, dateOrUndefined(q.from, 'from') ?? null, dateOrUndefined(q.to, 'to') ?? null, q.limit, after?.time ?? null, after?.id ?? null])
    return sendPage(request, reply, paged(rows, q.limit, (r) => String(r.id), (r) => ({
      id: r.id, gatewayId: r.gateway_id, deviceId: r.device_id, topic: r.topic, reason: r.reason, payload: r.payload, receivedAt: isoTime(r.received_at)
    })))
  })
}
