import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EVENT_TYPES } from '../../protocol/index.js'
import type { Database } from '../db/database.js'
import { Window, dateOrUndefined } from './schemas.js'

/** The raw event history (every accepted event, heartbeats included). */
export const eventRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.get('/v1/events', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['events'],
      querystring: Type.Object({
        deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        type: Type.Optional(Type.Union(EVENT_TYPES.map((t) => Type.Literal(t)))),
        ...Window
      })
    }
  }, async (request) => {
    const q = request.query
    const rows = await db.query<{ time: Date, event_id: string, device_id: string, boot: string | null, seq: number, type: string, device_ts: Date | null, skew_ms: number | null, skewed: boolean, battery: number | null, rssi: number | null, fw: string | null, gateway_id: string, data: unknown }>(
      `SELECT time, event_id, device_id, boot, seq, type, device_ts, skew_ms, skewed, battery, rssi, fw, gateway_id, data
       FROM events
       WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR type = $2)
         AND ($3::timestamptz IS NULL OR time >= $3) AND ($4::timestamptz IS NULL OR time < $4)
       ORDER BY time DESC LIMIT $5`,
      [q.deviceId ?? null, q.type ?? null, dateOrUndefined(q.from, 'from') ?? null, dateOrUndefined(q.to, 'to') ?? null, q.limit])
    return rows.map((r) => ({
      time: r.time.toISOString(),
      eventId: r.event_id,
      deviceId: r.device_id,
      boot: r.boot,
      seq: r.seq,
      type: r.type,
      deviceTs: r.device_ts?.toISOString() ?? null,
      skewMs: r.skew_ms,
      skewed: r.skewed,
      battery: r.battery,
      rssi: r.rssi,
      fw: r.fw,
      gatewayId: r.gateway_id,
      data: r.data
    }))
  })
}
