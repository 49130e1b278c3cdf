/**
 * The audible cues, made with Web Audio (no sound file to load). Browsers only let a page
 * play sound after a click on it: `audioReady()` tells whether the header must offer
 * "enable sound" (a wall display opened with #token has had no click yet).
 *
 * Each kind has a sound of its own, told apart without looking at the screen: a panic rises,
 * an escalation alternates high and low, a routine notice (a device offline, a low battery)
 * is one soft tone, and a lost connection falls. (Once a low battery sounded exactly like a
 * panic.)
 *
 * Mute silences routine notices only. What makes a duty room reach for mute is routine
 * noise (an outage's devices, batteries at night); a mute that also silenced panics, with no
 * end, left the next panic silent for the rest of the shift. Panics, escalations, their
 * reminders and a lost connection always sound.
 */
/** @typedef {'panic' | 'escalated' | 'reminder' | 'notice' | 'lost'} SoundKind */

/**
 * The notes of each sound (Hz), its wave, and each note's length (s). Tests tell the sounds
 * apart by these frequencies: keep them distinct between kinds.
 * @type {Record<SoundKind, { wave: OscillatorType, notes: number[], length: number, gain: number }>}
 */
export const SOUNDS = {
  panic: { wave: 'square', notes: [659, 880, 1175, 659, 880, 1175], length: 0.16, gain: 0.25 },
  escalated: { wave: 'square', notes: [988, 740, 988, 740], length: 0.2, gain: 0.25 },
  reminder: { wave: 'square', notes: [880, 1175], length: 0.16, gain: 0.25 },
  notice: { wave: 'sine', notes: [523], length: 0.3, gain: 0.18 },
  lost: { wave: 'triangle', notes: [587, 440, 294], length: 0.35, gain: 0.3 }
}
/** What mute silences (see above). */
export const MUTABLE = /** @type {readonly SoundKind[]} */ (['notice'])

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

/** Plays one sound, unless it is muted (see MUTABLE). */
export function beep (/** @type {SoundKind} */ kind) {
  if (muted && MUTABLE.includes(kind)) return
  const sound = SOUNDS[kind]
  const audio = ctx()
  if (audio.state !== 'running') audio.resume().catch(() => {})
  let at = audio.currentTime + 0.02
  for (const frequency of sound.notes) {
    const osc = audio.createOscillator()
    const gain = audio.createGain()
    osc.type = sound.wave
    osc.frequency.value = frequency
    // Short ramps avoid clicks; square waves cut through a noisy duty room.
    gain.gain.setValueAtTime(0.0001, at)
    gain.gain.exponentialRampToValueAtTime(sound.gain, at + 0.02)
    gain.gain.exponentialRampToValueAtTime(0.0001, at + sound.length)
    osc.connect(gain).connect(audio.destination)
    osc.start(at)
    osc.stop(at + sound.length + 0.02)
    at += sound.length + 0.06
  }
}
