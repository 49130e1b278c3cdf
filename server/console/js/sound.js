/**
 * The audible cue, made with Web Audio (no sound file to load). Browsers only let a page
 * play sound after a click on it: `audioReady()` tells whether the header must offer
 * "enable sound" (a wall display opened with #token has had no click yet).
 */
/** @type {AudioContext | null} */
let context = null
let muted = false

function ctx () {
  context ??= new AudioContext()
  return context
}

/** Sets the audio engine up before the first alert (it can take a moment to start). */
export function prepareAudio () {
  try { ctx() } catch {}
}

/** Call from a click handler: unlocks audio for the rest of the session. */
export function unlockAudio () {
  return ctx().resume().catch(() => {})
}

export const audioReady = () => context !== null && context.state === 'running'
export const isMuted = () => muted
export function setMuted (/** @type {boolean} */ value) { muted = value }

/**
 * Two-tone beep; an escalation plays it twice, higher, so it is told apart without looking.
 * @param {'new' | 'escalated' | 'reminder'} kind
 */
export function beep (kind) {
  if (muted) return
  const audio = ctx()
  if (audio.state !== 'running') audio.resume().catch(() => {})
  const tones = kind === 'escalated' ? [988, 740, 988, 740] : kind === 'reminder' ? [880] : [880, 660]
  let at = audio.currentTime + 0.02
  for (const frequency of tones) {
    const osc = audio.createOscillator()
    const gain = audio.createGain()
    osc.type = 'square'
    osc.frequency.value = frequency
    // Short ramps avoid clicks; square waves cut through a noisy duty room.
    gain.gain.setValueAtTime(0.0001, at)
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02)
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2)
    osc.connect(gain).connect(audio.destination)
    osc.start(at)
    osc.stop(at + 0.22)
    at += 0.26
  }
}
