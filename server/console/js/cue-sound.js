/**
 * Which sound a cue makes. A new panic sounds at once, every one; an escalation too. Other new
 * alerts (a device offline, a low battery, a tamper) share one soft notice per burst: a
 * gateway's outage brings its devices' alerts together, and forty of them once started eighty
 * tones at the same instant, under which the next panic could not be told apart.
 */
/** Notices closer than this to the one before belong to the same burst. */
const BURST_GAP_MS = 4000
/** A burst that goes on sounds again after this, so a long one is not heard only at its start. */
const BURST_REPEAT_MS = 60_000

/**
 * @param {(kind: import('./sound.js').SoundKind) => void} beep
 * @param {() => number} [now]
 */
export function createCueSound (beep, now = () => Date.now()) {
  let lastNoticeCue = -Infinity
  let lastNoticePlayed = -Infinity

  function notice () {
    const at = now()
    const inBurst = at - lastNoticeCue < BURST_GAP_MS
    lastNoticeCue = at
    if (inBurst && at - lastNoticePlayed < BURST_REPEAT_MS) return
    lastNoticePlayed = at
    beep('notice')
  }

  /** @param {{ kind: 'new' | 'escalated' | 'press', alert: any }} cue */
  return function play ({ kind, alert }) {
    if (kind === 'press') return
    if (kind === 'escalated') beep('escalated')
    else if (alert.kind === 'panic') beep('panic')
    else notice()
  }
}
