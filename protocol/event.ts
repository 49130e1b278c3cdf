/**
 * The uplink event payload (DESIGN.md §3): what a device publishes on `sos/v1/{id}/event`.
 */
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'

export const MAX_EVENT_BYTES = 4096

export const EVENT_TYPES = [
  'press', 'hold', 'cancel', 'heartbeat', 'tamper', 'battery_low', 'power_lost', 'report', 'test'
] as const
export type EventType = typeof EVENT_TYPES[number]

export const REPORT_CATEGORIES = ['noise', 'theft', 'drugs', 'traffic', 'lighting', 'other'] as const

export const DeviceEvent = Type.Object({
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  boot: Type.Optional(Type.String({ minLength: 1, maxLength: 36, pattern: '^[A-Za-z0-9_.:-]+$' })),
  type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
  ts: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 })),
  battery: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  rssi: Type.Optional(Type.Integer({ minimum: -200, maximum: 0 })),
  fw: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  pin: Type.Optional(Type.String({ pattern: '^[0-9]{4,8}$' })),
  report: Type.Optional(Type.Object({
    category: Type.Union(REPORT_CATEGORIES.map((c) => Type.Literal(c))),
    text: Type.String({ maxLength: 1000 })
  }))
})
export type DeviceEvent = Static<typeof DeviceEvent>

const deviceEventValidator = Compile(DeviceEvent)

export type ParseResult =
  | { ok: true, event: DeviceEvent }
  | { ok: false, reason: string, seq?: number }

/**
 * Parses and validates a raw payload. Never throws: a bad payload is a value to answer, not an
 * exception to propagate into the broker. Unknown fields are dropped rather than refused, so a
 * newer firmware's extra telemetry never turns a press into a rejection.
 */
export function parseDeviceEvent (payload: Buffer | Uint8Array | string): ParseResult {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  if (bytes.length > MAX_EVENT_BYTES) return { ok: false, reason: `payload too large: ${bytes.length} bytes (max ${MAX_EVENT_BYTES})` }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return { ok: false, reason: 'payload is not valid UTF-8' }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'payload is not JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'payload must be a JSON object' }
  }
  const record = value as Record<string, unknown>
  const seq = Number.isSafeInteger(record.seq) && (record.seq as number) >= 0 ? record.seq as number : undefined
  const known = pickKnown(record)
  if (!deviceEventValidator.Check(known)) {
    const first = deviceEventValidator.Errors(known)[0]
    const where = first?.instancePath ? `${first.instancePath.slice(1)}: ` : ''
    return { ok: false, reason: `invalid event: ${where}${first?.message ?? 'does not match schema'}`, seq }
  }
  const event = known as DeviceEvent
  if (event.type === 'report' && event.report === undefined) return { ok: false, reason: 'invalid event: report: required for type report', seq }
  return { ok: true, event }
}

const KNOWN_KEYS = Object.keys(DeviceEvent.properties)

function pickKnown (record: Record<string, unknown>): Record<string, unknown> {
  const known: Record<string, unknown> = {}
  for (const key of KNOWN_KEYS) {
    if (Object.hasOwn(record, key)) known[key] = record[key]
  }
  return known
}
