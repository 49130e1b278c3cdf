import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EVENT_TYPES } from '../../protocol/index.js'
import type { Database } from '../db/database.js'
import { dateOrUndefined } from './schemas.js'
import { Page, readCursor, sendPage } from './paging.js'
import { paged, positionOf, afterPosition } from '../db/keyset-paging.js'
import { isoTime, isoTimeOrNull } from '../db/iso-times.js'

const eventType = (options: { description?: string } = {}) => Type.Union(EVENT_TYPES.map((t) => Type.Literal(t)), options)

/** The raw event history (every accepted event, heartbeats included). */
export const eventRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, { db }) => {
  app.get('/v1/events', {
    config: { roles: ['operator', 'analyst'] },
    schema: {
      tags: ['events'],
      querystring: Type.Object({
        deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        type: Type.Optional(eventType()),
        // An alert's timeline wants what the device did, not the heartbeats in between: a
        // device beats once a minute, so an alert open overnight had its opening press pushed
        // out of any page by them when they were filtered out after the fact.
        excludeType: Type.Optional(eventType({ description: 'Leave out events of this type (e.g. heartbeat)' })),
        order: Type.Optional(Type.Union([Type.Literal('desc'), Type.Literal('asc')], {
          default: 'desc',
          description: 'desc: the newest first (the default); asc: the oldest first, so a page that starts at `from` holds what came first'
        })),
        ...Page
      })
    }
  }, async (request, reply) => {
    const q = request.query
    const after = readCursor(q.cursor)
    // Events of one instant by id, so pages neither skip nor repeat one (db/keyset-paging.ts).
    const [direction, beyond] = q.order === 'asc' ? ['ASC', '>'] as const : ['DESC', '<'] as const
    const rows = await db.query<{ time: Date, event_id: string, device_id: string, boot: string | null, seq: number, type: string, device_ts: Date | null, skew_ms: number | null, skewed: boolean, battery: number | null, rssi: number | null, fw: string | null, gateway_id: string, data: unknown, position: string | null }>(
      `SELECT time, event_id, device_id, boot, seq, type, device_ts, skew_ms, skewed, battery, rssi, fw, gateway_id, data, ${positionOf('time')}
       FROM events
       WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR type = $2)
         AND ($3::timestamptz IS NULL OR time >= $3) AND ($4::timestamptz IS NULL OR time < $4)
         AND ($6::text IS NULL OR type <> $6)
         AND ${afterPosition({ time: 'time', id: 'event_id' }, { time: '$7', id: '$8' }, beyond)}
       ORDER BY time ${direction}, event_id ${direction} LIMIT $5`,
      [q.deviceId ?? null, q.type ?? null, dateOrUndefined(q.from, 'from') ?? null, dateOrUndefined(q.to, 'to') ?? null, q.limit, q.excludeType ?? null, after?.time ?? null, after?.id ?? null])
    return sendPage(request, reply, paged(rows, q.limit, (r) => r.event_id, (r) => ({
      time: isoTime(r.time),
      eventId: r.event_id,
      deviceId: r.device_id,
      boot: r.boot,
      seq: r.seq,
      type: r.type,
      deviceTs: isoTimeOrNull(r.device_ts),
      skewMs: r.skew_ms,
      skewed: r.skewed,
      battery: r.battery,
      rssi: r.rssi,
      fw: r.fw,
      gatewayId: r.gateway_id,
      data: r.data
    })))
  })
}
