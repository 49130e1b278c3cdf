/**
 * The uplink event payload (DESIGN.md §3): what a device publishes on `sos/v1/{id}/event`.
 */
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'

export const MAX_EVENT_BYTES = 4096
/**
 * How deep a payload may nest, counted before it is parsed. An event of ours is an object
 * holding at most one object (`report`), but the fields we do not keep are dropped unread, and
 * a newer firmware's diagnostics (`"diag":{"net":{"wifi":{…}}}`) must not cost its press: the
 * bound only keeps a 4 KiB payload of brackets from being built.
 */
export const MAX_NESTING = 16

export const EVENT_TYPES = [
  'press', 'hold', 'cancel', 'heartbeat', 'tamper', 'battery_low', 'power_lost', 'report', 'test'
] as const
export type EventType = typeof EVENT_TYPES[number]

export const REPORT_CATEGORIES = ['noise', 'theft', 'drugs', 'traffic', 'lighting', 'other'] as const

export const DeviceEvent = Type.Object({
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  boot: Type.Optional(Type.String({ minLength: 1, maxLength: 36, pattern: '^[A-Za-z0-9_.:-]+$' })),
  type: Type.Enum(EVENT_TYPES),
  ts: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 })),
  battery: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  rssi: Type.Optional(Type.Integer({ minimum: -200, maximum: 0 })),
  fw: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  pin: Type.Optional(Type.String({ pattern: '^[0-9]{4,8}$' })),
  report: Type.Optional(Type.Object({
    category: Type.Enum(REPORT_CATEGORIES),
    text: Type.String({ maxLength: 1000 })
  }))
})
export type DeviceEvent = Static<typeof DeviceEvent>

const deviceEventValidator = Compile(DeviceEvent)

/** A field the device sent that could not be kept, and why: the event went on without it. */
export interface DroppedField { field: string, reason: string }

export type ParseResult =
  | { ok: true, event: DeviceEvent, dropped?: DroppedField[] }
  | { ok: false, reason: string, seq?: number }

/**
 * Parses and validates a raw payload. Never throws: a bad payload is a value to answer, not an
 * exception to propagate into the broker.
 *
 * What makes the event (seq, boot, type, and a cancel's PIN or a report's body) must be valid,
 * or the event is refused. What only describes the device (ts, battery, rssi, fw) is dropped
 * when it is not, and the event kept: a battery gauge reading 101 after a charge must not turn
 * a press into a rejection, nor a heartbeat into silence (and then a false `device_offline`).
 * The caller is told what was dropped, to dead-letter and count it. Unknown fields are dropped
 * unread, so a newer firmware's extra telemetry never turns a press into a rejection either,
 * nor do bytes that are not UTF-8 inside such a field or a telemetry one.
 */
export function parseDeviceEvent (payload: Buffer | Uint8Array | string): ParseResult {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  if (bytes.length > MAX_EVENT_BYTES) {
    return { ok: false, reason: `payload too large: ${bytes.length} bytes (max ${MAX_EVENT_BYTES})`, ...seqIn(Buffer.from(bytes.subarray(0, MAX_EVENT_BYTES)).toString('latin1')) }
  }
  let text: string
  // Bytes that are not UTF-8 (a firmware string read from erased flash, 0xFF…) are read as
  // U+FFFD and looked at below: in a field the event can go without, they cost that field only.
  let notUtf8 = false
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    text = lenientUtf8.decode(bytes)
    notUtf8 = true
  }
  // RFC 8259 §8.1: a parser may ignore a byte order mark; a serializer that writes one must not
  // cost a press.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const { depth, surelyNotJson } = scan(text)
  if (depth > MAX_NESTING) return { ok: false, reason: `payload nested too deeply: ${depth} levels (max ${MAX_NESTING})`, ...seqIn(text) }
  const notJson = () => ({ ok: false as const, reason: notUtf8 ? 'payload is not valid UTF-8' : 'payload is not JSON', ...seqIn(text) })
  if (surelyNotJson) return notJson()
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return notJson()
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'payload must be a JSON object' }
  }
  const record = value as Record<string, unknown>
  const seq = Number.isSafeInteger(record.seq) && (record.seq as number) >= 0 ? record.seq as number : undefined
  // Only what is kept is checked: an unknown field, whatever it holds, is dropped unread, so it
  // can never turn a press into a rejection.
  const known = pickKnown(record)
  const dropped: DroppedField[] = []
  const drop = (field: string, reason: string): boolean => {
    if (!isDroppable(field, record.type)) return false
    if (Object.hasOwn(known, field)) dropped.push({ field, reason })
    delete known[field]
    return true
  }
  for (const field of Object.keys(known)) {
    if (notUtf8 && holdsReplacement(known[field]) && !drop(field, `${field}: not valid UTF-8`)) {
      return { ok: false, reason: `payload is not valid UTF-8 (in ${field})`, seq }
    }
    if (!Object.hasOwn(known, field)) continue
    const unsafe = findUnsafe(known[field], field)
    if (unsafe && !drop(field, unsafe)) return { ok: false, reason: `invalid event: ${unsafe}`, seq }
  }
  // Round after round: the validator names a few errors at a time (eight), and six bad telemetry
  // fields beside a press named only some of them, so the press was refused with the rest.
  for (let round = 0; !deviceEventValidator.Check(known); round++) {
    const errors = deviceEventValidator.Errors(known).map((error) => ({ field: error.instancePath.split('/')[1] ?? '', error }))
    const fatal = errors.find(({ field }) => !isDroppable(field, record.type))
    const first = fatal?.error ?? errors[0]?.error
    if (fatal || !first) {
      const where = first?.instancePath ? `${first.instancePath.slice(1)}: ` : ''
      return { ok: false, reason: `invalid event: ${where}${first?.message ?? 'does not match schema'}`, seq }
    }
    const before = Object.keys(known).length
    for (const { field, error } of errors) drop(field, `${error.instancePath.slice(1)}: ${error.message}`)
    // What is left is the contract's own shape; if nothing was left out, nothing here understood why.
    if (Object.keys(known).length === before || round > 16) return { ok: false, reason: 'invalid event: does not match schema', seq }
  }
  const event = known as DeviceEvent
  if (event.type === 'report' && event.report === undefined) return { ok: false, reason: 'invalid event: report: required for type report', seq }
  // Inside a report too, only what the protocol names goes on (as at the top level).
  if (event.report) event.report = { category: event.report.category, text: event.report.text }
  return dropped.length > 0 ? { ok: true, event, dropped } : { ok: true, event }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/**
 * The seq of a payload that could not be parsed, when its top level names exactly one, whole
 * (digits followed by `,` or `}`: not cut off by the size limit): the rejection then tells the
 * device which event it was (a press it can show as refused, not still waiting). A `"seq"`
 * nested deeper, or inside a string, is not the event's.
 */
function seqIn (text: string): { seq?: number } {
  let depth = 0
  let found: number | undefined
  let count = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { // a string: a key `"seq"` at the top level, or skipped whole
      const end = stringEnd(text, i)
      if (depth === 1 && text.slice(i, end + 1) === '"seq"') {
        const value = /^\s*:\s*(\d{1,16})\s*[,}]/.exec(text.slice(end + 1, end + 40))
        if (value) { count++; found = Number(value[1]) }
      }
      i = end
    } else if (c === 0x7b || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) depth--
  }
  return count === 1 && Number.isSafeInteger(found) ? { seq: found } : {}
}

/** Where the JSON string opening at `start` closes (or the text's end). */
function stringEnd (text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x5c) i++
    else if (c === 0x22) return i
  }
  return text.length
}

/**
 * Whether a value holds U+FFFD anywhere (keys included): where bytes that were not UTF-8 went.
 * A U+FFFD the device sent itself, in a payload that also holds bytes that are not, is taken
 * for one of them: rare, and it costs that field (a report's body, the report).
 */
function holdsReplacement (value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\ufffd')
  if (typeof value !== 'object' || value === null) return false
  return Object.entries(value).some(([key, inner]) => key.includes('\ufffd') || holdsReplacement(inner))
}

/** What only describes the device, never what the event is. */
const TELEMETRY = new Set(['ts', 'battery', 'rssi', 'fw'])

/**
 * A field an event can go on without: telemetry always; a PIN or a report body on an event
 * that is not a cancel or a report (where they mean nothing). A type that is not valid is
 * refused on its own account, so any field may be dropped beside it.
 */
function isDroppable (field: string, type: unknown): boolean {
  if (TELEMETRY.has(field)) return true
  if (field === 'pin') return type !== 'cancel'
  if (field === 'report') return type !== 'report'
  return false
}

const KNOWN_KEYS = Object.keys(DeviceEvent.properties)

function pickKnown (record: Record<string, unknown>): Record<string, unknown> {
  const known: Record<string, unknown> = {}
  for (const key of KNOWN_KEYS) {
    if (Object.hasOwn(record, key)) known[key] = record[key]
  }
  return known
}

/**
 * What one pass over a JSON text tells before parsing it (strings skipped): its deepest `{`/`[`
 * nesting, so a payload of 2000 nested brackets is refused without building it; and whether it
 * is surely not JSON, so that JSON.parse need not throw to say so. A thrown SyntaxError costs
 * about fifteen times a parse, and a device spraying junk paid it per packet (a third of the
 * gateway's time under such a flood). "Surely" errs one way only: a text that starts with no
 * character a JSON value can start with, or an object left open (unclosed brackets or string,
 * or not ending in `}`). Anything else is left to JSON.parse.
 */
function scan (text: string): { depth: number, surelyNotJson: boolean } {
  let depth = 0
  let max = 0
  let unterminated = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      i = stringEnd(text, i)
      if (i >= text.length) unterminated = true
    } else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth)
    else if (c === 0x7d || c === 0x5d) depth--
  }
  let first = 0
  while (first < text.length && isJsonSpace(text.charCodeAt(first))) first++
  let last = text.length - 1
  while (last > first && isJsonSpace(text.charCodeAt(last))) last--
  const opening = text.charCodeAt(first)
  if (first === text.length || !canStartJsonValue(opening)) return { depth: max, surelyNotJson: true }
  return { depth: max, surelyNotJson: opening === 0x7b && (unterminated || depth !== 0 || text.charCodeAt(last) !== 0x7d) }
}

/** JSON's whitespace (RFC 8259 §2): space, tab, line feed, carriage return; nothing else. */
const isJsonSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** What a JSON value can start with (RFC 8259 §3): `{`, `[`, `"`, `-`, a digit, or t/f/n of a literal. */
const canStartJsonValue = (c: number) =>
  c === 0x7b || c === 0x5b || c === 0x22 || c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e

/** Keys that reach an object's prototype if some consumer merges the payload naively. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
/** C0 controls and DEL; report texts may keep line breaks and tabs. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/
const CONTROL_STRICT = /[\u0000-\u001f\u007f]/
/** A lone UTF-16 surrogate (JSON's `\ud800` escape): not a character, breaks UTF-8 encoders downstream. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Finds what no kept field may hold, at any depth (a report's body included): prototype-pollution
 * keys, control characters, lone surrogates. Returns the reason or undefined.
 */
function findUnsafe (value: unknown, path: string): string | undefined {
  if (typeof value === 'string') {
    const control = path === 'report.text' ? CONTROL : CONTROL_STRICT
    if (control.test(value)) return `${path || 'value'}: control characters are not allowed`
    if (LONE_SURROGATE.test(value)) return `${path || 'value'}: not valid Unicode (lone surrogate)`
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  for (const key of Object.keys(value)) {
    const where = path ? `${path}.${key}` : key
    if (FORBIDDEN_KEYS.has(key)) return `${where}: forbidden key`
    const keyProblem = findUnsafe(key, '')
    if (keyProblem) return `key ${JSON.stringify(key)}: ${keyProblem.replace(/^value: /, '')}`
    const problem = findUnsafe((value as Record<string, unknown>)[key], where)
    if (problem) return problem
  }
  return undefined
}
