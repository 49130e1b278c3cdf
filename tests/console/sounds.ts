/**
 * The console's sounds as the page plays them (server/console/js/sound.js `SOUNDS`): the notes
 * of each kind, by which a test tells from the oscillators started which sound it heard.
 */
export type SoundKind = 'panic' | 'escalated' | 'reminder' | 'notice' | 'lost'

// The page's own module, plain JavaScript: loaded as the browser loads it.
const soundModule: string = '../../server/console/js/sound.js'
export const SOUNDS: Record<SoundKind, { notes: number[] }> = (await import(soundModule)).SOUNDS

/** How many times the sound of `kind` is among `tones` (its notes in order). */
export function timesPlayed (tones: number[], kind: SoundKind): number {
  const notes = SOUNDS[kind].notes
  let times = 0
  for (let i = 0; i + notes.length <= tones.length; i++) {
    if (notes.every((note, j) => tones[i + j] === note)) { times++; i += notes.length - 1 }
  }
  return times
}
