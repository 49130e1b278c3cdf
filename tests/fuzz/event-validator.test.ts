/**
 * Property-based tests of the device payload validator (protocol/event.ts): whatever bytes a
 * device sends, `parseDeviceEvent` answers with a value (never throws), accepts every event
 * the contract allows, and refuses everything else with a reason.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { isUtf8 } from 'node:buffer'
import { EVENT_TYPES, MAX_EVENT_BYTES, parseDeviceEvent } from '../../protocol/index.js'
import { anyValidEvent, runs, unknownFields } from './arbitraries.js'

const mustAnswer = (payload: Buffer | string) => {
  const result = parseDeviceEvent(payload)
  if (result.ok) expect(typeof result.event.seq).toBe('number')
  else expect(result.reason).toMatch(/\S/)
  return result
}

describe('parseDeviceEvent under fuzzing', () => {
  it('never throws on arbitrary bytes, and answers a reason when it refuses', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: MAX_EVENT_BYTES + 64 }), (bytes) => {
      mustAnswer(Buffer.from(bytes))
    }), { numRuns: runs(2000) })
  })

  it('never throws on arbitrary JSON values and strings', () => {
    fc.assert(fc.property(fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'), fc.string({ unit: 'binary', maxLength: 300 })), (text) => {
      mustAnswer(text)
    }), { numRuns: runs(2000) })
  })

  it('says "not JSON" exactly when JSON.parse throws, cut, spliced or junk alike (the check before parsing errs only one way)', () => {
    // Valid events cut short, spliced with junk, with whitespace around: what a broken
    // serializer or a spraying device sends, and the texts that sit at the check's edges.
    const text = fc.oneof(
      fc.tuple(anyValidEvent, fc.nat(), fc.string({ maxLength: 3 })).map(([event, at, tail]) => { const t = JSON.stringify(event); return t.slice(0, at % (t.length + 1)) + tail }),
      fc.tuple(anyValidEvent, fc.nat(), fc.string({ unit: 'binary', maxLength: 4 })).map(([event, at, junk]) => { const t = JSON.stringify(event); const i = at % (t.length + 1); return t.slice(0, i) + junk + t.slice(i) }),
      fc.tuple(fc.constantFrom('', ' ', '\t', '\n', '\r', '\u00a0', '\u000b'), fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'), fc.constantFrom('', ' ', '\n', '\u00a0', '}', ']', '"')).map(([a, v, b]) => a + v + b),
      fc.string({ unit: 'binary', maxLength: 60 })
    )
    fc.assert(fc.property(text, (t) => {
      let parses = true
      try { JSON.parse(t.charCodeAt(0) === 0xfeff ? t.slice(1) : t) } catch { parses = false }
      const result = parseDeviceEvent(t)
      const saidNotJson = !result.ok && /^payload is not (JSON|valid UTF-8)$/.test(result.reason)
      if (!result.ok && /nested too deeply|too large/.test(result.reason)) return
      expect(saidNotJson, JSON.stringify(t)).toBe(!parses)
    }), { numRuns: runs(3000) })
  })

  it('accepts every event the contract allows, unchanged, and ignores unknown fields', () => {
    fc.assert(fc.property(anyValidEvent, unknownFields, (event, extra) => {
      const result = parseDeviceEvent(JSON.stringify({ ...extra, ...event }))
      expect(result).toEqual({ ok: true, event })
    }), { numRuns: runs(1000) })
  })

  it('keeps any valid event whose telemetry (and a PIN or report that means nothing on its type) is junk, naming each field left out', () => {
    // Junk for every one of those fields: wrong types, fractions, empty or over-long text,
    // control characters, arrays and (shallow) objects.
    const junk = fc.oneof(
      fc.constant(null), fc.boolean(), fc.double({ noInteger: true, noNaN: true }), fc.constant(''),
      fc.string({ minLength: 33, maxLength: 60 }), fc.string({ maxLength: 5 }).map((t) => `\u0001${t}`),
      fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 })
    )
    const droppable = (type: string) => ['ts', 'battery', 'rssi', 'fw', ...(type === 'cancel' ? [] : ['pin']), ...(type === 'report' ? [] : ['report'])]
    const garbled = fc.tuple(anyValidEvent, fc.dictionary(fc.constantFrom('ts', 'battery', 'rssi', 'fw', 'pin', 'report'), junk, { minKeys: 1, maxKeys: 6 }))
      .map(([event, bad]) => ({ event, bad: Object.fromEntries(Object.entries(bad).filter(([field]) => droppable(event.type).includes(field))) }))
      .filter(({ bad }) => Object.keys(bad).length > 0)
    fc.assert(fc.property(garbled, ({ event, bad }) => {
      const result = parseDeviceEvent(JSON.stringify({ ...event, ...bad }))
      const kept = Object.fromEntries(Object.entries(event).filter(([field]) => !(field in bad)))
      expect(result).toMatchObject({ ok: true, event: kept })
      if (!result.ok) return
      expect(result.event).toEqual(kept)
      expect(result.dropped!.map((d) => d.field).sort()).toEqual(Object.keys(bad).sort())
      for (const d of result.dropped!) expect(d.reason).toMatch(new RegExp(`^${d.field}\\b`))
    }), { numRuns: runs(1000) })
  })

  it('keeps any valid event whose firmware string or unknown fields hold bytes that are not UTF-8, leaving out only the firmware string', () => {
    // Lone continuation bytes, cut sequences, overlong forms, surrogates encoded, erased flash.
    const notUtf8 = fc.oneof(
      fc.constantFrom([0xff], [0xfe], [0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]),
      fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 8 }).filter((b) => !isUtf8(Buffer.from(b)))
    ).map((b) => Buffer.from(b))
    const where = fc.constantFrom('fw', 'unknown value', 'unknown key')
    fc.assert(fc.property(anyValidEvent, notUtf8, where, (event, bad, at) => {
      const marker = '\u0000MARK\u0000'
      const withMarker = at === 'fw' ? { ...event, fw: marker } : at === 'unknown value' ? { diag: marker, ...event } : { [marker]: 1, ...event }
      const [before, after] = JSON.stringify(withMarker).split(JSON.stringify(marker).slice(1, -1))
      const result = parseDeviceEvent(Buffer.concat([Buffer.from(before!), bad, Buffer.from(after!)]))
      const { fw: _, ...withoutFw } = event
      expect(result).toEqual(at === 'fw'
        ? { ok: true, event: withoutFw, dropped: [{ field: 'fw', reason: 'fw: not valid UTF-8' }] }
        : { ok: true, event })
    }), { numRuns: runs(1000) })
  })

  it('refuses an event whose seq breaks the contract, with a reason naming seq', () => {
    const badSeq = fc.oneof(
      fc.integer({ max: -1 }), fc.double({ noInteger: true }), fc.string(), fc.boolean(), fc.constant(null),
      fc.constant(Number.MAX_SAFE_INTEGER + 2)
    )
    fc.assert(fc.property(anyValidEvent, badSeq, (event, seq) => {
      const result = parseDeviceEvent(JSON.stringify({ ...event, seq }))
      expect(result.ok).toBe(false)
      if (!result.ok) expect(result.reason).toMatch(/seq|JSON/)
    }), { numRuns: runs(500) })
  })

  it('refuses an unknown type, keeping the seq so the rejection can name the event', () => {
    const badType = fc.string().filter((t) => !(EVENT_TYPES as readonly string[]).includes(t))
    fc.assert(fc.property(anyValidEvent, badType, (event, type) => {
      const result = parseDeviceEvent(JSON.stringify({ ...event, type }))
      expect(result).toMatchObject({ ok: false, seq: event.seq, reason: expect.stringMatching(/type/) })
    }), { numRuns: runs(500) })
  })

  it('refuses any payload over the size limit, whatever it holds', () => {
    fc.assert(fc.property(anyValidEvent, fc.integer({ min: 1, max: 2048 }), (event, over) => {
      const text = JSON.stringify({ ...event, pad: 'x'.repeat(MAX_EVENT_BYTES + over) })
      expect(parseDeviceEvent(text)).toMatchObject({ ok: false, reason: expect.stringMatching(/too large/) })
    }), { numRuns: runs(200) })
  })

  it('never throws on valid events with one byte flipped, truncated or inserted', () => {
    const mutated = fc.tuple(anyValidEvent, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'truncate', 'insert'))
      .map(([event, at, byte, how]) => {
        const bytes = Buffer.from(JSON.stringify(event))
        const i = at % bytes.length
        if (how === 'flip') { bytes[i] = byte; return bytes }
        if (how === 'truncate') return bytes.subarray(0, i)
        return Buffer.concat([bytes.subarray(0, i), Buffer.from([byte]), bytes.subarray(i)])
      })
    fc.assert(fc.property(mutated, (bytes) => { mustAnswer(bytes) }), { numRuns: runs(2000) })
  })
})
