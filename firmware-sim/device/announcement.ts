/** Ward announcements (DESIGN.md §3) as a kiosk shows them; bad or expired ones are skipped. */
import { SCREEN_TEXT, type ScreenMessage } from './outputs.js'

export function parseAnnouncement (payload: Buffer, now: number): Extract<ScreenMessage, { kind: 'announcement' }> | undefined {
  // An empty retained payload clears an announcement.
  if (payload.length === 0) return undefined
  let value: Record<string, unknown>
  try {
    value = JSON.parse(payload.toString('utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { id, title, body, lang, expiresAt } = value
  if (typeof title !== 'string' || typeof body !== 'string') return undefined
  if (typeof expiresAt === 'string' && Date.parse(expiresAt) <= now) return undefined
  return {
    kind: 'announcement',
    id: String(id ?? ''),
    title,
    body,
    lang: typeof lang === 'string' ? lang : 'vi',
    ...(typeof expiresAt === 'string' ? { expiresAt } : {}),
    text: SCREEN_TEXT.announcement(title)
  }
}
