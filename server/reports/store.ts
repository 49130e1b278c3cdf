/** The residents' report queue (kiosks): listing for operators, closing with a note. */
import type { Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import { conflict, notFound } from '../plugins/errors.js'
import { isoTime, isoTimeOrNull } from '../db/iso-times.js'
import { paged, positionOf, afterPosition, type Paged, type Position } from '../db/keyset-paging.js'

export const REPORT_STATES = ['open', 'closed'] as const
export type ReportState = typeof REPORT_STATES[number]

export interface ReportView {
  /** The ticket id shown on the kiosk, e.g. R-7K3Q. */
  id: string
  deviceId: string
  zone: string
  category: string
  text: string
  state: ReportState
  createdAt: string
  closedAt: string | null
  closedBy: string | null
  note: string | null
}

interface ReportRow {
  id: string
  device_id: string
  zone: string
  category: string
  text: string
  state: ReportState
  created_at: Date
  closed_at: Date | null
  closed_by: string | null
  note: string | null
}

const COLUMNS = 'id, device_id, zone, category, text, state, created_at, closed_at, closed_by, note'

export class ReportStore {
  constructor (private readonly db: Queryable, private readonly bus?: Bus) {}

  /** The newest first; reports filed at the same instant by id (db/keyset-paging.ts). */
  async list (filter: { state?: ReportState, zone?: string, from?: Date, to?: Date, limit: number, after?: Position }): Promise<Paged<ReportView>> {
    const rows = await this.db.query<ReportRow & { position: string | null }>(`SELECT ${COLUMNS}, ${positionOf('created_at')} FROM reports
      WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR zone = $2)
        AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at < $4)
        AND ${afterPosition({ time: 'created_at', id: 'id' }, { time: '$6', id: '$7' })}
      ORDER BY created_at DESC, id DESC LIMIT $5`,
    [filter.state ?? null, filter.zone ?? null, filter.from ?? null, filter.to ?? null, filter.limit, filter.after?.time ?? null, filter.after?.id ?? null])
    return paged(rows, filter.limit, (row) => row.id, toView)
  }

  async get (id: string): Promise<ReportView> {
    const rows = await this.db.query<ReportRow>(`SELECT ${COLUMNS} FROM reports WHERE id = $1`, [id.toUpperCase()])
    if (!rows[0]) throw notFound(`report ${id}`)
    return toView(rows[0])
  }

  async close (id: string, actor: string, note?: string): Promise<ReportView> {
    const rows = await this.db.query<ReportRow>(`UPDATE reports SET state = 'closed', closed_at = now(), closed_by = $2, note = $3
      WHERE id = $1 AND state = 'open' RETURNING ${COLUMNS}`, [id.toUpperCase(), actor, note ?? null])
    if (rows[0]) {
      this.bus?.emit('report', { reportId: rows[0].id, deviceId: rows[0].device_id, state: 'closed' })
      return toView(rows[0])
    }
    const existing = await this.get(id)
    throw conflict(`report ${existing.id} is already ${existing.state}`)
  }
}

function toView (r: ReportRow): ReportView {
  return {
    id: r.id,
    deviceId: r.device_id,
    zone: r.zone,
    category: r.category,
    text: r.text,
    state: r.state,
    createdAt: isoTime(r.created_at),
    closedAt: isoTimeOrNull(r.closed_at),
    closedBy: r.closed_by,
    note: r.note
  }
}
