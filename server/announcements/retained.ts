/**
 * Each zone's retained message on `sos/v1/announce/{zone}` is what a kiosk that (re)connects is
 * shown: it must be the zone's newest announcement not yet over, or nothing. A new announcement
 * takes the place as it is posted; when it expires or is withdrawn, the one before it comes
 * back if it still runs (a day-long "water cut" outlives a 20-second test), and the topic is
 * cleared once none is left (an empty retained payload, MQTT 3.1.1 §3.3.1.3).
 *
 * What the zone's message is now is read from the downlink queue itself (its retained rows are
 * never pruned), so this works out the same after a server restart and from any instance; and
 * a zone whose message is already right gets nothing new.
 */
import type { Queryable } from '../db/database.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import { ADVISORY_LOCKS } from '../db/advisory-locks.js'
import { topics } from '../../protocol/index.js'

/** The retained payload that clears a zone's topic: the gateway publishes it as nothing is retained. */
export const CLEARED = ''

export interface RetainedAnnouncementRow {
  id: string
  zone: string
  title: string
  body: string
  lang: string
  expires_at: Date
}

/** What a kiosk receives (DESIGN.md §3). */
export function retainedPayload (row: RetainedAnnouncementRow): Record<string, string> {
  return { id: row.id, title: row.title, body: row.body, lang: row.lang, expiresAt: row.expires_at.toISOString() }
}

/**
 * Puts each zone's retained message right, inside the caller's transaction (call the queue's
 * `notify()` after it commits). Returns how many zones got a new message.
 */
export async function retainCurrent (tx: Queryable, engine: 'pglite' | 'postgres', downlink: DownlinkQueue, zones: string[]): Promise<number> {
  if (zones.length === 0) return 0
  // The downlink writers' lock, taken before reading: an announcement posted meanwhile is
  // either seen here or queued after what is queued here, never overwritten by an older one.
  if (engine === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.downlinkOrder])
  const topicOf = new Map(zones.map((zone) => [topics.announce(zone), zone]))
  const current = await tx.query<{ topic: string, announcement_id: string | null }>(
    `SELECT DISTINCT ON (topic) topic, payload->>'id' AS announcement_id FROM downlink
      WHERE retain AND topic = ANY($1::text[]) ORDER BY topic, downlink.id DESC`, [[...topicOf.keys()]])
  const wanted = await tx.query<RetainedAnnouncementRow>(
    `SELECT DISTINCT ON (zone) id, zone, title, body, lang, expires_at FROM announcements
      WHERE zone = ANY($1::text[]) AND expires_at > now() ORDER BY zone, created_at DESC, id DESC`, [zones])
  const shownIn = new Map(current.map((row) => [topicOf.get(row.topic)!, row.announcement_id]))
  const wantedIn = new Map(wanted.map((row) => [row.zone, row]))
  const messages = []
  for (const zone of zones) {
    const next = wantedIn.get(zone)
    if ((shownIn.get(zone) ?? null) === (next?.id ?? null)) continue
    messages.push({ topic: topics.announce(zone), payload: next ? retainedPayload(next) : CLEARED, retain: true })
  }
  await downlink.enqueue(tx, messages)
  return messages.length
}
