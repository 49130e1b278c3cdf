/**
 * Ward announcements (DESIGN.md §3) as a kiosk shows them: from the zone's retained message on
 * `sos/v1/announce/{zone}`, until its `expiresAt` or until the zone's message is replaced or
 * cleared. Bad messages are skipped and change nothing on the screen.
 */
import { SCREEN_TEXT, type ScreenMessage } from './outputs.js'

export type ShownAnnouncement = Extract<ScreenMessage, { kind: 'announcement' }>

/** What one message on the announcement topic means for the screen. */
export type AnnouncementNews =
  | { kind: 'show', announcement: ShownAnnouncement }
  /** The zone has no announcement any more: cleared, or the one it has is over. */
  | { kind: 'clear' }
  | { kind: 'ignore' }

/** setTimeout holds at most 2^31 - 1 ms (24.8 days): a later expiry is looked at again then. */
const LONGEST_TIMER_MS = 2 ** 31 - 1

export function readAnnouncement (payload: Buffer, now: number): AnnouncementNews {
  // The server clears the zone's retained message when its last announcement ends: an empty
  // payload (MQTT's way), or a JSON null or "" (a gateway that relays every payload as JSON).
  if (payload.length === 0) return { kind: 'clear' }
  let value: unknown
  try {
    value = JSON.parse(payload.toString('utf8'))
  } catch {
    return { kind: 'ignore' }
  }
  if (value === null || value === '') return { kind: 'clear' }
  if (typeof value !== 'object' || Array.isArray(value)) return { kind: 'ignore' }
  const { id, title, body, lang, expiresAt } = value as Record<string, unknown>
  if (typeof title !== 'string' || typeof body !== 'string') return { kind: 'ignore' }
  // The zone's latest word, and it is over: nothing of the zone's is to be shown.
  if (typeof expiresAt === 'string' && Date.parse(expiresAt) <= now) return { kind: 'clear' }
  return {
    kind: 'show',
    announcement: {
      kind: 'announcement',
      id: String(id ?? ''),
      title,
      body,
      lang: typeof lang === 'string' ? lang : 'vi',
      ...(typeof expiresAt === 'string' ? { expiresAt } : {}),
      text: SCREEN_TEXT.announcement(title)
    }
  }
}

/** The announcement on a kiosk's screen: shown as it comes, taken off when it expires or the zone's message is cleared. */
export class AnnouncementScreen {
  private shown?: ShownAnnouncement
  private expiryTimer?: NodeJS.Timeout

  constructor (private readonly screen: (message: ScreenMessage) => void, private readonly now: () => number = Date.now) {}

  receive (payload: Buffer): void {
    const news = readAnnouncement(payload, this.now())
    if (news.kind === 'ignore') return
    if (news.kind === 'clear') return this.takeOff()
    clearTimeout(this.expiryTimer)
    this.shown = news.announcement
    this.screen(news.announcement)
    this.watchExpiry()
  }

  stop (): void {
    clearTimeout(this.expiryTimer)
  }

  private watchExpiry (): void {
    const expiresAt = this.shown?.expiresAt === undefined ? NaN : Date.parse(this.shown.expiresAt)
    if (Number.isNaN(expiresAt)) return
    const left = expiresAt - this.now()
    if (left <= 0) return this.takeOff()
    this.expiryTimer = setTimeout(() => this.watchExpiry(), Math.min(left, LONGEST_TIMER_MS))
  }

  private takeOff (): void {
    clearTimeout(this.expiryTimer)
    const shown = this.shown
    if (!shown) return
    this.shown = undefined
    this.screen({ kind: 'announcement_cleared', id: shown.id })
  }
}
