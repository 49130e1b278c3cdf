/**
 * The standing alarm (server/console/js/standing-alarm.js, the module the page runs), with fake
 * timers. A console signed out stops its lost-connection alarm; a read still on its way then
 * told the store, whose listener set the alarm's condition again, and a stopped alarm beeped
 * again (on a wall display someone had just silenced).
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest'

const alarmModule: string = '../../server/console/js/standing-alarm.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

it('stays quiet once stopped, whatever its condition is set to after, until started again', async () => {
  const { createStandingAlarm } = await import(alarmModule)
  const beep = vi.fn()
  const alarm = createStandingAlarm({ beep, afterMs: 20_000, repeatMs: 15_000, onChange: () => {} })
  alarm.set('down')
  await vi.advanceTimersByTimeAsync(21_000)
  expect(beep).toHaveBeenCalledTimes(1)
  alarm.stop()
  beep.mockClear()
  alarm.set('degraded') // a read that landed after the sign-out
  alarm.set('down')
  await vi.advanceTimersByTimeAsync(120_000)
  alarm.set('down')
  expect(beep).not.toHaveBeenCalled()
  alarm.start() // the condition was kept: it sounds again
  expect(beep).toHaveBeenCalledTimes(1)
  alarm.stop()
})
