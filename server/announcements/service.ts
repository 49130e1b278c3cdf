/**
 * Ward announcements to the kiosks of a zone (the "Inform" of Listen – Inform – Support).
 * Stored, and queued in the same transaction as a retained QoS 1 downlink message on
 * `sos/v1/announce/{zone}` with `{id, title, body, lang, expiresAt}`: a kiosk that connects
 * later still gets the latest one, and shows it only until `expiresAt`.
 */
import { randomUUID } from 'node:crypto'
import type { Database } from '../db/database.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import { topics } from '../../protocol/index.js'
import { HttpError } from '../plugins/errors.js'

export interface NewAnnouncement {
  zone: string
  title: string
  body: string
  lang: string
  expiresAt: string
}

export interface AnnouncementView extends NewAnnouncement {
  id: string
  createdAt: string
  createdBy: string
}

interface AnnouncementRow {
  id: string
  zone: string
  title: string
  body: string
  lang: string
  expires_at: Date
  created_at: Date
  created_by: string
}

export class Announcements {
  constructor (private readonly db: Database, private readonly downlink: DownlinkQueue) {}

  async create (input: NewAnnouncement, actor: string): Promise<AnnouncementView> {
    const expiresAt = new Date(input.expiresAt)
    if (!(expiresAt.getTime() > Date.now())) throw new HttpError(400, 'VALIDATION', 'expiresAt must be in the future')
    const id = randomUUID()
    const row = await this.db.transaction(async (tx) => {
      const rows = await tx.query<AnnouncementRow>(`INSERT INTO announcements (id, zone, title, body, lang, expires_at, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`, [id, input.zone, input.title, input.body, input.lang, expiresAt, actor])
      const payload = { id, title: input.title, body: input.body, lang: input.lang, expiresAt: expiresAt.toISOString() }
      await this.downlink.enqueue(tx, [{ topic: topics.announce(input.zone), payload, retain: true }])
      return rows[0]!
    })
    await this.downlink.notify()
    return toView(row)
  }

  async list (filter: { zone?: string, limit: number }): Promise<AnnouncementView[]> {
    const rows = await this.db.query<AnnouncementRow>(`SELECT * FROM announcements WHERE ($1::text IS NULL OR zone = $1)
      ORDER BY created_at DESC LIMIT $2`, [filter.zone ?? null, filter.limit])
    return rows.map(toView)
  }
}

function toView (r: AnnouncementRow): AnnouncementView {
  return {
    id: r.id,
    zone: r.zone,
    title: r.title,
    body: r.body,
    lang: r.lang,
    expiresAt: r.expires_at.toISOString(),
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by
  }
}
