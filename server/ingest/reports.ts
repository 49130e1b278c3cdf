/** Kiosk `report` events into the residents' queue, each with a ticket id. */
import type { Queryable } from '../db/database.js'
import type { GatewayEvent } from '../../protocol/index.js'
import { newTicketId } from '../reports/ticket-id.js'

/**
 * Files the report, dated `filedAtMs` (its gateway's receive time, or the server's when that is
 * far ahead: ingest.ts); returns its ticket id, or null when the kiosk is not registered.
 */
export async function fileReport (tx: Queryable, e: GatewayEvent, filedAtMs = e.receivedAt): Promise<string | null> {
  const report = e.event.report
  if (!report) return null
  for (let attempt = 0; ; attempt++) {
    // After a few collisions the ward has many tickets: use longer ids rather than loop.
    const id = newTicketId(attempt < 3 ? 4 : 6)
    const rows = await tx.query<{ id: string }>(`
      INSERT INTO reports (id, event_id, device_id, zone, category, text, created_at)
      SELECT $1, $2, d.id, d.zone, $3, $4, to_timestamp($5 / 1000.0) FROM devices d WHERE d.id = $6
      ON CONFLICT (id) DO NOTHING
      RETURNING id`, [id, e.eventId, report.category, report.text, filedAtMs, e.deviceId])
    if (rows[0]) return rows[0].id
    const registered = await tx.query('SELECT 1 FROM devices WHERE id = $1', [e.deviceId])
    if (registered.length === 0 || attempt >= 10) return null
  }
}

/** Ticket ids of reports already filed for these event ids (a resent event hears the same ticket). */
export async function ticketsOf (tx: Queryable, eventIds: string[]): Promise<Map<string, string>> {
  if (eventIds.length === 0) return new Map()
  const rows = await tx.query<{ id: string, event_id: string }>('SELECT id, event_id FROM reports WHERE event_id = ANY($1::text[])', [eventIds])
  return new Map(rows.map((r) => [r.event_id, r.id]))
}
