import { describe, expect, it } from 'vitest'
import { MAX_EVENT_BYTES, deviceIdOfClientId, eventIdOf, parseDeviceEvent, parseDeviceTopic, topics } from '../../protocol/index.js'

describe('device event payload', () => {
  it('accepts the minimal press and the full set of optional fields', () => {
    expect(parseDeviceEvent('{"seq":1,"type":"press"}')).toEqual({ ok: true, event: { seq: 1, type: 'press' } })
    const full = { seq: 9, boot: 'b-7', type: 'cancel', ts: 1764300000000, battery: 55, rssi: -70, fw: '1.2.0', pin: '1234' }
    expect(parseDeviceEvent(JSON.stringify(full))).toEqual({ ok: true, event: full })
    const report = { seq: 2, type: 'report', report: { category: 'noise', text: 'Karaoke sau 23 giờ' } }
    expect(parseDeviceEvent(JSON.stringify(report))).toEqual({ ok: true, event: report })
    // A newer kiosk's extra field inside the report goes nowhere, as one at the top level.
    expect(parseDeviceEvent(JSON.stringify({ ...report, report: { ...report.report, photo: 'data:…', lang: 'vi' } }))).toEqual({ ok: true, event: report })
  })

  it('drops unknown fields instead of refusing a newer firmware', () => {
    expect(parseDeviceEvent('{"seq":1,"type":"press","temperature":31}')).toEqual({ ok: true, event: { seq: 1, type: 'press' } })
  })

  it('keeps a press whose unknown or telemetry fields nest a few levels deep (a newer firmware\'s diagnostics)', () => {
    expect(parseDeviceEvent('{"seq":7,"type":"press","diag":{"net":{"wifi":{"ch":6,"ap":{"bssid":[1,2]}}}}}')).toEqual({ ok: true, event: { seq: 7, type: 'press' } })
    expect(parseDeviceEvent('{"seq":8,"type":"press","battery":{"cell":{"mv":[3700]}}}')).toMatchObject({ ok: true, event: { seq: 8, type: 'press' }, dropped: [{ field: 'battery' }] })
    expect(parseDeviceEvent(`{"seq":9,"type":"press","x":${'['.repeat(17)}${']'.repeat(17)}}`)).toMatchObject({ ok: false, reason: expect.stringMatching(/nested too deeply/) })
  })

  it('drops unknown fields unread, whatever they hold: a press is never refused for a field we do not keep', () => {
    const payload = '{"seq":2,"type":"press","__proto__":{"isAdmin":true},"constructor":{"prototype":{}},"dbg":"\\u0001\\ud800","x\\u0007":1}'
    expect(parseDeviceEvent(payload)).toEqual({ ok: true, event: { seq: 2, type: 'press' } })
  })

  it.each([
    ['a control character in a report', '{"seq":3,"type":"report","report":{"category":"noise","text":"a\\u0000"}}', /report.text: control characters/],
    ['a __proto__ key in a report', '{"seq":4,"type":"report","report":{"category":"noise","text":"x","__proto__":{}}}', /report.__proto__: forbidden key/],
    ['a lone surrogate in a report', '{"seq":5,"type":"report","report":{"category":"noise","text":"\\udc00"}}', /report.text: not valid Unicode/]
  ])('still refuses %s: what is kept must be safe', (_what, payload, reason) => {
    const result = parseDeviceEvent(payload)
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(reason) })
  })

  it.each([
    ['not JSON', 'press!', /not JSON/],
    ['a JSON array', '[1,2]', /JSON object/],
    ['a JSON string', '"press"', /JSON object/],
    ['null', 'null', /JSON object/],
    ['no seq', '{"type":"press"}', /seq/],
    ['negative seq', '{"seq":-1,"type":"press"}', /seq/],
    ['fractional seq', '{"seq":1.5,"type":"press"}', /seq/],
    ['string seq', '{"seq":"1","type":"press"}', /seq/],
    ['unknown type', '{"seq":1,"type":"explode"}', /type/],
    ['a cancel whose PIN is not digits', '{"seq":1,"type":"cancel","pin":"12ab"}', /pin/],
    ['a cancel whose PIN is a number', '{"seq":1,"type":"cancel","pin":1234}', /pin/],
    ['a bad seq beside bad telemetry', '{"seq":"1","type":"press","battery":500}', /seq/],
    ['an unknown type beside bad telemetry', '{"seq":1,"type":"explode","battery":500,"fw":"\\u0001"}', /type/],
    ['a long boot id', `{"seq":1,"type":"press","boot":"${'x'.repeat(37)}"}`, /boot/],
    ['a report without its body', '{"seq":1,"type":"report"}', /report/],
    ['a report of an unknown category', '{"seq":1,"type":"report","report":{"category":"aliens","text":"?"}}', /report/]
  ])('rejects %s with a reason', (_what, payload, reason) => {
    const result = parseDeviceEvent(payload)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.reason).toMatch(reason)
  })

  it('keeps the event and leaves out telemetry it cannot read, saying which and why', () => {
    // A battery gauge reading 101 after a charge, a radio driver's positive RSSI, a clock gone
    // negative, a firmware string with a NUL: none of them may cost the press.
    const result = parseDeviceEvent('{"seq":7,"boot":"b1","type":"press","battery":140,"rssi":5,"ts":-3,"fw":"1.0\\u0000"}')
    expect(result).toMatchObject({ ok: true, event: { seq: 7, boot: 'b1', type: 'press' } })
    if (!result.ok) return
    expect(result.event).toEqual({ seq: 7, boot: 'b1', type: 'press' })
    expect(Object.fromEntries(result.dropped!.map((d) => [d.field, d.reason]))).toEqual({
      battery: expect.stringMatching(/^battery: .*100/),
      rssi: expect.stringMatching(/^rssi: .*0/),
      ts: expect.stringMatching(/^ts: /),
      fw: 'fw: control characters are not allowed'
    })
    // What is valid beside it stays.
    expect(parseDeviceEvent('{"seq":8,"type":"heartbeat","battery":50.5,"rssi":-70}')).toEqual({
      ok: true, event: { seq: 8, type: 'heartbeat', rssi: -70 }, dropped: [{ field: 'battery', reason: expect.stringMatching(/^battery: /) }]
    })
  })

  it('leaves out a PIN or a report body where the type gives it no meaning, but not where it does', () => {
    expect(parseDeviceEvent('{"seq":1,"type":"press","pin":"12ab"}')).toMatchObject({ ok: true, event: { seq: 1, type: 'press' }, dropped: [{ field: 'pin' }] })
    expect(parseDeviceEvent('{"seq":2,"type":"heartbeat","report":{"category":"aliens","text":"?"}}')).toMatchObject({ ok: true, event: { seq: 2, type: 'heartbeat' }, dropped: [{ field: 'report' }] })
    expect(parseDeviceEvent('{"seq":3,"type":"cancel","pin":"12ab"}')).toMatchObject({ ok: false, seq: 3, reason: expect.stringMatching(/pin/) })
    expect(parseDeviceEvent('{"seq":4,"type":"report","report":{"category":"aliens","text":"?"}}')).toMatchObject({ ok: false, seq: 4, reason: expect.stringMatching(/report/) })
  })

  it('rejects oversized payloads, and bytes that are not UTF-8 where JSON or the event needs them', () => {
    const huge = parseDeviceEvent(JSON.stringify({ seq: 1, type: 'press', pad: 'x'.repeat(MAX_EVENT_BYTES) }))
    expect(huge).toMatchObject({ ok: false, seq: 1, reason: expect.stringMatching(/too large/) })
    const broken = parseDeviceEvent(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))
    expect(broken).toMatchObject({ ok: false, reason: expect.stringMatching(/UTF-8/) })
    expect(broken).not.toHaveProperty('seq')
    const badType = parseDeviceEvent(Buffer.concat([Buffer.from('{"seq":3,"type":"pre'), Buffer.from([0xff]), Buffer.from('ss"}')]))
    expect(badType).toMatchObject({ ok: false, seq: 3, reason: 'payload is not valid UTF-8 (in type)' })
    const badBoot = parseDeviceEvent(Buffer.concat([Buffer.from('{"seq":4,"type":"press","boot":"a'), Buffer.from([0xc3]), Buffer.from('"}')]))
    expect(badBoot).toMatchObject({ ok: false, seq: 4, reason: 'payload is not valid UTF-8 (in boot)' })
  })

  it('keeps a press whose bytes that are not UTF-8 lie in telemetry or in a field it does not read', () => {
    // A firmware string read from erased flash, and a newer firmware's diagnostics gone wrong.
    const erasedFw = Buffer.concat([Buffer.from('{"seq":1,"type":"press","battery":80,"fw":"'), Buffer.from([0xff, 0xff, 0xff]), Buffer.from('"}')])
    expect(parseDeviceEvent(erasedFw)).toEqual({ ok: true, event: { seq: 1, type: 'press', battery: 80 }, dropped: [{ field: 'fw', reason: 'fw: not valid UTF-8' }] })
    const unknown = Buffer.concat([Buffer.from('{"seq":2,"type":"press","diag":{"'), Buffer.from([0xfe]), Buffer.from('":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}')])
    expect(parseDeviceEvent(unknown)).toEqual({ ok: true, event: { seq: 2, type: 'press' } })
    // A U+FFFD the device really sent (valid UTF-8) is a character like any other.
    expect(parseDeviceEvent('{"seq":3,"type":"report","report":{"category":"other","text":"bad \ufffd sign"}}')).toMatchObject({ ok: true, event: { report: { text: 'bad \ufffd sign' } } })
  })

  it('reads past a byte order mark (RFC 8259 lets a parser ignore one)', () => {
    expect(parseDeviceEvent('\ufeff{"seq":13,"type":"press"}')).toEqual({ ok: true, event: { seq: 13, type: 'press' } })
    expect(parseDeviceEvent(Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"seq":14,"type":"press"}')]))).toEqual({ ok: true, event: { seq: 14, type: 'press' } })
  })

  it('names the seq of a payload it could not parse when the payload holds exactly one', () => {
    expect(parseDeviceEvent('{"seq": 7, "type": "press"')).toMatchObject({ ok: false, seq: 7, reason: 'payload is not JSON' })
    expect(parseDeviceEvent('{"seq":8,"type":"press","x":' + '['.repeat(40) + ']'.repeat(40) + '}')).toMatchObject({ ok: false, seq: 8, reason: expect.stringMatching(/nested/) })
    expect(parseDeviceEvent('{"seq":1,"seq":2,"type":')).not.toHaveProperty('seq')
    expect(parseDeviceEvent('{"seq":1.5,"type":')).not.toHaveProperty('seq')
    expect(parseDeviceEvent('press!')).not.toHaveProperty('seq')
    // Not the event's: nested, inside a string, or cut off by the size limit.
    expect(parseDeviceEvent('{"diag":{"seq":3},"seq":42,"type":"press",')).toMatchObject({ ok: false, seq: 42 })
    expect(parseDeviceEvent('{"diag":{"seq":3},"type":"press",')).not.toHaveProperty('seq')
    expect(parseDeviceEvent('{"note":"\\"seq\\":3","seq":"4","type":')).not.toHaveProperty('seq')
    const cut = parseDeviceEvent(`{"pad":"${'x'.repeat(MAX_EVENT_BYTES - 18)}","seq":12345,"type":"press"}`)
    expect(cut).toMatchObject({ ok: false, reason: expect.stringMatching(/too large/) })
    expect(cut).not.toHaveProperty('seq')
  })

  it('keeps the seq of a rejected event so the rejection can name it', () => {
    expect(parseDeviceEvent('{"seq":5,"type":"explode"}')).toMatchObject({ ok: false, seq: 5 })
  })
})

describe('a press beside much bad telemetry', () => {
  it('is kept with every bad field left out, however many (the validator names eight errors at a time)', () => {
    // fast-check's counterexample (CI, 0.3.11): six bad fields made a press "does not match schema".
    const bad = { fw: ' '.repeat(33), ts: -5e-324, rssi: 5e-324, pin: [], report: null, battery: -5e-324 }
    const result = parseDeviceEvent(JSON.stringify({ seq: 0, type: 'press', ...bad }))
    expect(result).toMatchObject({ ok: true, event: { seq: 0, type: 'press' } })
    expect(result.ok && result.dropped!.map((d) => d.field).sort()).toEqual(Object.keys(bad).sort())
  })
})

describe('topics and identities', () => {
  it('parses only well-formed device topics', () => {
    expect(parseDeviceTopic(topics.event('btn-001'))).toEqual({ deviceId: 'btn-001', kind: 'event' })
    expect(parseDeviceTopic('sos/v1/btn-001/ack')).toEqual({ deviceId: 'btn-001', kind: 'ack' })
    // The zones' announcements are never a device's topics, whatever the zone is called.
    for (const bad of ['sos/v1/BTN/event', 'sos/v1/btn-001/event/x', 'sos/v2/btn-001/event', 'sos/v1/+/event', 'sos/v1/btn-001/other', topics.announce('ack'), topics.announce('event')]) {
      expect(parseDeviceTopic(bad)).toBeNull()
    }
    expect(deviceIdOfClientId('announce')).toBeNull()
    expect(deviceIdOfClientId('announced')).toBe('announced')
  })

  it('maps client ids to devices, with an optional suffix', () => {
    expect(deviceIdOfClientId('btn-001')).toBe('btn-001')
    expect(deviceIdOfClientId('btn-001:svc')).toBe('btn-001')
    for (const bad of ['', 'ab', 'BTN-001', 'btn-001:', 'btn-001:a b', 'mqttjs_1234abcd']) {
      expect(deviceIdOfClientId(bad)).toBeNull()
    }
  })

  it('gives a redelivery the same event id and a reboot a new one', () => {
    expect(eventIdOf('btn-001', 7)).toBe(eventIdOf('btn-001', 7))
    expect(eventIdOf('btn-001', 7, 'boot-a')).not.toBe(eventIdOf('btn-001', 7, 'boot-b'))
  })
})
