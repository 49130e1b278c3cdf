/**
 * What a kiosk's screen does with its zone's announcement messages (fake timers): an
 * announcement is taken off at its `expiresAt`, not only skipped when it arrives expired; a
 * cleared zone (empty retained payload, or the `""` a gateway relays for it) takes it off too;
 * bad messages change nothing.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AnnouncementScreen } from '../../firmware-sim/device/announcement.js'
import type { ScreenMessage } from '../../firmware-sim/device/outputs.js'

const message = (id: string, expiresInMs: number, title = `title ${id}`) => Buffer.from(JSON.stringify({
  id, title, body: 'body', lang: 'vi', expiresAt: new Date(Date.now() + expiresInMs).toISOString()
}))

describe('announcement screen', () => {
  let shown: ScreenMessage[]
  let screen: AnnouncementScreen
  const kinds = () => shown.map((m) => m.kind === 'announcement' || m.kind === 'announcement_cleared' ? `${m.kind}:${m.id}` : m.kind)

  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-03-01T08:00:00Z') })
    shown = []
    screen = new AnnouncementScreen((m) => shown.push(m))
  })

  afterEach(() => {
    screen.stop()
    vi.useRealTimers()
  })

  it('takes an announcement off the screen when it expires', () => {
    screen.receive(message('a1', 20_000))
    expect(kinds()).toEqual(['announcement:a1'])
    vi.advanceTimersByTime(19_999)
    expect(kinds()).toEqual(['announcement:a1'])
    vi.advanceTimersByTime(1)
    expect(kinds()).toEqual(['announcement:a1', 'announcement_cleared:a1'])
  })

  it('a newer announcement replaces it, and only the one shown expires the screen', () => {
    screen.receive(message('a1', 10_000))
    screen.receive(message('a2', 60_000))
    vi.advanceTimersByTime(30_000)
    expect(kinds()).toEqual(['announcement:a1', 'announcement:a2'])
    vi.advanceTimersByTime(30_000)
    expect(kinds()).toEqual(['announcement:a1', 'announcement:a2', 'announcement_cleared:a2'])
  })

  it('a cleared zone takes it off: an empty payload, JSON null, or ""', () => {
    for (const clear of [Buffer.alloc(0), Buffer.from('null'), Buffer.from('""')]) {
      shown = []
      screen.receive(message('a1', 60_000))
      screen.receive(clear)
      expect(kinds()).toEqual(['announcement:a1', 'announcement_cleared:a1'])
    }
    screen.receive(Buffer.alloc(0)) // nothing shown: nothing to take off
    expect(kinds()).toEqual(['announcement:a1', 'announcement_cleared:a1'])
  })

  it('the zone\'s message arriving already expired takes the shown one off; bad messages change nothing', () => {
    screen.receive(message('a1', 60_000))
    screen.receive(Buffer.from('{"id": "x", "title":'))
    screen.receive(Buffer.from(JSON.stringify({ id: 'x', body: 'no title' })))
    screen.receive(Buffer.from('[1, 2]'))
    expect(kinds()).toEqual(['announcement:a1'])
    screen.receive(message('a0', -1000))
    expect(kinds()).toEqual(['announcement:a1', 'announcement_cleared:a1'])
  })

  it('an expiry past what one timer can wait (24.8 days) is kept all the same', () => {
    screen.receive(message('long', 40 * 86_400_000))
    vi.advanceTimersByTime(39 * 86_400_000)
    expect(kinds()).toEqual(['announcement:long'])
    vi.advanceTimersByTime(86_400_000)
    expect(kinds()).toEqual(['announcement:long', 'announcement_cleared:long'])
  })
})
