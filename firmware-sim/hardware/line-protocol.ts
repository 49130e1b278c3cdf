/**
 * The kiosk controller board's serial line protocol: one frame per line, NMEA style,
 * `$<fields>*<HH>` where HH is the XOR of every byte between `$` and `*`, in hex.
 *
 * Board → driver:  `$SOS,<seq>,<type>[,<args>]*HH`
 *   type: press | hold | down | up | cancel,<pin> | tamper | test | power_lost | report,<category>,<text>
 *   `seq` is the board's own frame counter: a frame it resends (no ACK heard) repeats it.
 * Driver → board:  `$ACK,<seq>*HH`, `$NAK,<seq or ->,<reason>*HH`,
 *   `$LED,<off|blinking|steady|flash>*HH` (`flash`: the self-test's short cue),
 *   `$SND,<cue>*HH` (an alarm state, or `self_test_ok`), `$TKT,<ticket id>*HH`,
 *   `$SCR,<vi|en>,<text>*HH`, `$ANN,<id>,<title>*HH`,
 *   `$ANC,<id>*HH` (announcement `id` is over: expired, withdrawn or cleared; back to the idle page).
 */
import { REPORT_CATEGORIES } from '../../protocol/index.js'
import type { ReportCategory } from '../device/wire-event.js'

export const MAX_LINE_BYTES = 512

export type BoardCommand =
  | { type: 'press' | 'hold' | 'down' | 'up' | 'tamper' | 'test' | 'power_lost' }
  | { type: 'cancel', pin: string }
  | { type: 'report', category: ReportCategory, text: string }

export interface BoardFrame {
  seq: number
  command: BoardCommand
}

export type FrameRejection = 'too_long' | 'framing' | 'checksum' | 'format' | 'unknown_type' | 'bad_argument'

export type ParsedFrame = { ok: true, frame: BoardFrame } | { ok: false, reason: FrameRejection, seq?: number }

export function checksum (body: string): string {
  let sum = 0
  for (const byte of Buffer.from(body, 'utf8')) sum ^= byte
  return sum.toString(16).toUpperCase().padStart(2, '0')
}

/** A frame to write: fields joined with commas, framed and checksummed (no line ending). */
export function encodeFrame (...fields: Array<string | number>): string {
  const body = fields.map((f) => sanitize(String(f))).join(',')
  return `$${body}*${checksum(body)}`
}

/** Frame delimiters cannot appear inside a field. */
function sanitize (field: string): string {
  return field.replace(/[$*\r\n]/g, ' ')
}

const SIMPLE = new Set(['press', 'hold', 'down', 'up', 'tamper', 'test', 'power_lost'])

/** Parses one line (without its line ending). Never throws. */
export function parseFrame (line: string): ParsedFrame {
  if (Buffer.byteLength(line, 'utf8') > MAX_LINE_BYTES) return { ok: false, reason: 'too_long' }
  const match = /^\$([^$*]*)\*([0-9A-Fa-f]{2})$/.exec(line)
  if (!match) return { ok: false, reason: 'framing' }
  const [, body, sum] = match as unknown as [string, string, string]
  if (checksum(body) !== sum.toUpperCase()) return { ok: false, reason: 'checksum' }
  const [tag, seqText, type, ...args] = body.split(',')
  if (tag !== 'SOS' || seqText === undefined || !/^[0-9]{1,9}$/.test(seqText) || type === undefined) return { ok: false, reason: 'format' }
  const seq = Number(seqText)
  if (SIMPLE.has(type)) {
    if (args.length > 0) return { ok: false, reason: 'bad_argument', seq }
    return { ok: true, frame: { seq, command: { type: type as 'press' } } }
  }
  if (type === 'cancel') {
    const [pin] = args
    if (args.length !== 1 || !pin || !/^[0-9]{4,8}$/.test(pin)) return { ok: false, reason: 'bad_argument', seq }
    return { ok: true, frame: { seq, command: { type: 'cancel', pin } } }
  }
  if (type === 'report') {
    const [category, ...words] = args
    const text = words.join(',').trim()
    if (!(REPORT_CATEGORIES as readonly string[]).includes(category ?? '') || text.length === 0 || text.length > 1000) return { ok: false, reason: 'bad_argument', seq }
    return { ok: true, frame: { seq, command: { type: 'report', category: category as ReportCategory, text } } }
  }
  return { ok: false, reason: 'unknown_type', seq }
}
