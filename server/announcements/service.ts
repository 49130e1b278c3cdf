/**
 * Ward announcements to the kiosks of a zone (the "Inform" of Listen – Inform – Support).
 * Stored, and queued in the same transaction as a retained QoS 1 downlink message on
 * `sos/v1/announce/{zone}` with `{id, title, body, lang, expiresAt}`: a kiosk that connects
 * later still gets the zone's current one, and shows it only until `expiresAt`. When one ends
 * (expired, or withdrawn) the zone's retained message goes back to the newest still running,
 * or is cleared (retained.ts, expiry.ts).
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/database.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import { topics } from '../../protocol/index.js'
import { HttpError, notFound } from '../plugins/errors.js'
import { retainCurrent, retainedPayload, type RetainedAnnouncementRow } from './retained.js'
import { AnnouncementExpiry } from './expiry.js'

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

export interface PostedAnnouncement extends AnnouncementView {
  /** Kiosks registered (not revoked) in the zone: 0 is most likely a mistyped zone. */
  kiosks: number
}

interface AnnouncementRow extends RetainedAnnouncementRow {
  created_at: Date
  created_by: string
}

export class Announcements {
  private expiry?: AnnouncementExpiry

  constructor (private readonly db: Database, private readonly downlink: DownlinkQueue) {}

  /** Starts putting zones' retained messages right as announcements expire (now for those over while the server was down). */
  async start (log: FastifyBaseLogger): Promise<void> {
    this.expiry ??= new AnnouncementExpiry(this.db.loops ?? this.db, this.downlink, log)
    await this.expiry.start()
  }

  async stop (): Promise<void> {
    await this.expiry?.stop()
  }

  async create (input: NewAnnouncement, actor: string): Promise<PostedAnnouncement> {
    const expiresAt = new Date(input.expiresAt)
    if (!(expiresAt.getTime() > Date.now())) throw new HttpError(400, 'VALIDATION', 'expiresAt must be in the future')
    const id = randomUUID()
    const { row, kiosks } = await this.db.transaction(async (tx) => {
      const rows = await tx.query<AnnouncementRow>(`INSERT INTO announcements (id, zone, title, body, lang, expires_at, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`, [id, input.zone, input.title, input.body, input.lang, expiresAt, actor])
      await this.downlink.enqueue(tx, [{ topic: topics.announce(input.zone), payload: retainedPayload(rows[0]!), retain: true }])
      const [count] = await tx.query<{ kiosks: number }>(
        `SELECT count(*)::int AS kiosks FROM devices WHERE zone = $1 AND kind = 'kiosk' AND revoked_at IS NULL`, [input.zone])
      return { row: rows[0]!, kiosks: count?.kiosks ?? 0 }
    })
    await this.downlink.notify()
    this.expiry?.wake()
    return { ...toView(row), kiosks }
  }

  /**
   * Withdraws an announcement: it ends now (its `expiresAt` becomes the time of withdrawal),
   * and its zone's kiosks are shown the one before it still running, or nothing. Withdrawing one
   * already over changes nothing and answers the same (a retried request is no error).
   */
  async withdraw (id: string): Promise<AnnouncementView> {
    const row = await this.db.transaction(async (tx) => {
      const rows = await tx.query<AnnouncementRow>(
        'UPDATE announcements SET expires_at = LEAST(expires_at, now()) WHERE id = $1 RETURNING *', [id])
      if (rows[0]) await retainCurrent(tx, this.db.engine, this.downlink, [rows[0].zone])
      return rows[0]
    })
    if (!row) throw notFound('announcement')
    await this.downlink.notify()
    this.expiry?.wake()
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
