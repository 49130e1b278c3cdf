/**
 * An alarm for a condition that lasts: a console that lost the live feed, or a wall display
 * signed out because its token was revoked. Either one looked like a quiet ward: only a small
 * pill in the header (or a sign-in form on a screen nobody watches) said so. Once the condition
 * has lasted `afterMs`, it is raised (the console puts it in the tab title, read on a tab in
 * the background too) and its sound repeats every `repeatMs` until the condition ends or
 * someone silences it; a blip shorter than `afterMs` (a reconnect) stays quiet.
 */
/** How often the alarm looks at the clock: its timing is to the second, no finer. */
const TICK_MS = 1000

/**
 * @param {{ beep: () => void, afterMs: number, repeatMs: number, onChange: () => void }} options
 */
export function createStandingAlarm ({ beep, afterMs, repeatMs, onChange }) {
  /** @type {string | null} */
  let condition = null
  let since = 0
  let raised = false
  let silenced = false
  let lastSound = -Infinity
  let stopped = false

  function check () {
    if (stopped) return
    const now = Date.now()
    const shouldRaise = condition !== null && now - since >= afterMs
    if (shouldRaise !== raised) {
      raised = shouldRaise
      onChange()
    }
    if (raised && !silenced && now - lastSound >= repeatMs) {
      lastSound = now
      beep()
    }
  }
  let timer = setInterval(check, TICK_MS)

  return {
    /** What is wrong now (a word the caller gives), or null when all is well. */
    set (/** @type {string | null} */ now) {
      if (now === null) { condition = null; silenced = false; lastSound = -Infinity } else {
        if (condition === null) since = Date.now()
        condition = now
      }
      check()
    },
    /** The condition, once raised (it lasted `afterMs`); null otherwise. */
    raised: () => (raised ? condition : null),
    /** Stops the sound until the condition ends and comes again; the caller's display stays. */
    silence () { silenced = true },
    /**
     * Quiet for good, whatever `set` says after (a signed-out console's last reads still land),
     * until `start`ed again.
     */
    stop () { stopped = true; clearInterval(timer) },
    /** After `stop`: looks at the condition again (it was kept meanwhile). */
    start () {
      if (!stopped) return
      stopped = false
      timer = setInterval(check, TICK_MS)
      check()
    }
  }
}
