/**
 * Bad device input over real sockets: every kind of malformed publish is acknowledged,
 * answered `rejected` with a reason on the device's ack topic, dead-lettered, counted and
 * forwarded to the server as a dead letter; the same connection then presses and is stored,
 * also with unknown fields that hold anything (dropped unread).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { MAX_EVENT_BYTES, topics, type Ack } from '../../protocol/index.js'
import { metricValue, writeRawPublish } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

const id = 'btn-bad-001'

type Case = [what: string, send: (device: MqttClient) => Promise<void> | void, reason: RegExp]

const publish = (payload: string | Buffer, topic = topics.event(id)) => async (device: MqttClient) => {
  await device.publishAsync(topic, payload, { qos: 1 })
}

const cases: Case[] = [
  ['not JSON', publish('press!'), /not JSON/],
  ['an empty payload', publish(''), /not JSON/],
  ['a JSON array', publish('[1,2]'), /JSON object/],
  ['a string seq (wrong type)', publish('{"seq":"1","type":"press"}'), /seq/],
  ['a numeric cancel PIN (wrong type)', publish('{"seq":4,"type":"cancel","pin":1234}'), /pin/],
  ['an unknown type', publish('{"seq":5,"type":"explode"}'), /type/],
  ['an oversized payload', publish(JSON.stringify({ seq: 6, type: 'press', pad: 'x'.repeat(MAX_EVENT_BYTES) })), /too large/],
  ['deep nesting', publish(`{"seq":7,"type":"press","x":${'['.repeat(60)}${']'.repeat(60)}}`), /nested too deeply/],
  ['a __proto__ key in a report', publish('{"seq":8,"type":"report","report":{"category":"noise","text":"x","__proto__":{"isAdmin":true}}}'), /report.__proto__: forbidden key/],
  ['a constructor key in a report', publish('{"seq":9,"type":"report","report":{"category":"noise","text":"x","constructor":{"x":1}}}'), /report.constructor: forbidden key/],
  ['invalid UTF-8', publish(Buffer.from([0x7b, 0x22, 0x73, 0xff, 0xfe, 0x7d])), /UTF-8/],
  ['a control character in a report', publish('{"seq":11,"type":"report","report":{"category":"noise","text":"1.0\\u0000"}}'), /control characters/],
  ['a lone surrogate in a report', publish('{"seq":12,"type":"report","report":{"category":"noise","text":"\\ud800"}}'), /lone surrogate/],
  ['a malformed cancel PIN', publish('{"seq":14,"type":"cancel","pin":"12ab"}'), /pin/],
  ['a report without its body', publish('{"seq":15,"type":"report"}'), /report/],
  ['an unknown topic under its own prefix', publish('{"seq":16,"type":"press"}', `sos/v1/${id}/evnt`), /invalid topic/],
  ['a topic that is not valid UTF-8', (device) => writeRawPublish(device, Buffer.concat([Buffer.from(`sos/v1/${id}/ev`), Buffer.from([0xff, 0xfe])]), Buffer.from('{"seq":17,"type":"press"}'), 17), /invalid topic: topic is not valid UTF-8/],
  ['a topic with a control character', (device) => writeRawPublish(device, Buffer.from(`sos/v1/${id}/ev\u0007nt`), Buffer.from('{"seq":18,"type":"press"}'), 18), /invalid topic: topic contains control characters/],
  ['packet id 0 on a QoS 1 publish', (device) => writeRawPublish(device, Buffer.from(topics.event(id)), Buffer.from('{"seq":19,"type":"press"}'), 0), /packet id 0/],
  // A dead letter keeps 4 KiB with each PIN masked: masking must not grow it past what the
  // server takes (every `"pin":1` becomes `"pin":"****"`), nor leave digits of a PIN the cut splits.
  ['a cancel holding hundreds of PINs', publish(`{"seq":20,"type":"cancel",${'"pin":1,'.repeat(500)}"x":0}`), /pin|too large/],
  ['a PIN astride the 4 KiB a dead letter keeps', publish(`{"seq":21,"type":"cancel","x":"${'a'.repeat(4052)}","pin":"98765432"}`), /too large/]
]

describe('malformed device input', () => {
  let system: TestSystem
  let device: MqttClient
  let acks: Awaited<ReturnType<typeof ackCollector>>

  beforeAll(async () => {
    system = await startSystem()
    const secret = await system.provision(id)
    device = await connectDevice(system.mqttUrl, id, id, secret)
    acks = await ackCollector(device, id)
  })

  afterAll(async () => {
    await device?.endAsync()
    await system?.stop()
  })

  it(`answers each of ${cases.length} kinds of malformed publish with rejected and a reason, dead-letters and counts it`, async () => {
    const seen: Ack[] = []
    for (const [what, send, reason] of cases) {
      const before = acks.acks.length
      await send(device)
      const answer = await acks.waitFor((a) => acks.acks.indexOf(a) >= before && a.state === 'rejected', 5000)
      expect(answer.reason, what).toMatch(reason)
      seen.push(answer)
    }
    expect(seen).toHaveLength(cases.length)
    // A rejection names the event's seq when the payload had a readable one, parsed or not.
    expect(seen[5]).toMatchObject({ seq: 5, state: 'rejected' })
    expect(seen[6]).toMatchObject({ seq: 6, state: 'rejected', reason: expect.stringMatching(/too large/) })
    expect(seen[7]).toMatchObject({ seq: 7, state: 'rejected', reason: expect.stringMatching(/nested/) })

    const letters = await system.gateway.deadLetters.recent(100)
    expect(letters).toHaveLength(cases.length)
    expect(letters.every((l) => l.deviceId === id)).toBe(true)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total')).toBe(cases.length)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total', { reason: 'payload_is_not_json' })).toBe(2)

    // Nothing malformed reached storage.
    const { body: events } = await system.api('GET', `/v1/events?deviceId=${id}`)
    expect(events).toEqual([])

    // The server got every dead letter (forwarded in `deadLetters` and confirmed).
    await eventually(async () => system.gateway.deadLetters.peekUnforwarded(1).length === 0 ? true : undefined, 5000, 'dead letters forwarded')
    expect(await metricValue(system.gateway, 'sos_gateway_forwarded_total', { kind: 'dead_letter' })).toBe(cases.length)
    const { body: kept } = await system.api('GET', `/v1/dead-letters?deviceId=${id}&limit=100`)
    expect(kept, 'dead letters the server refused (and the gateway let go)').toHaveLength(cases.length)
    const payloads = (kept as any[]).map((l) => Buffer.from(l.payload ?? '', 'base64').toString('latin1'))
    expect(payloads.some((p) => p.includes('"pin":"****"'))).toBe(true)
    expect(payloads.filter((p) => /9876|"pin":1/.test(p)), 'a PIN kept in a dead letter').toEqual([])
  })

  it('stores the next good press on the same connection', async () => {
    expect(device.connected).toBe(true)
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 100, type: 'press' }), { qos: 1 })
    const received = await acks.waitFor((a) => a.state === 'received' && a.seq === 100)
    expect(received.alertId).toBeTruthy()
    const { body: events } = await system.api('GET', `/v1/events?deviceId=${id}`)
    expect(events.map((e: any) => [e.seq, e.type])).toEqual([[100, 'press']])
  })

  it('stores a press whose unknown fields hold anything (a __proto__ key, control characters): they are dropped, the alarm is not', async () => {
    await device.publishAsync(topics.event(id), '{"seq":200,"type":"press","__proto__":{"isAdmin":true},"dbg":"\\u0001\\ud800"}', { qos: 1 })
    const received = await acks.waitFor((a) => a.state === 'received' && a.seq === 200)
    expect(received.alertId).toBeTruthy()
    const { body: events } = await system.api('GET', `/v1/events?deviceId=${id}`)
    expect(events.find((e: any) => e.seq === 200)).toMatchObject({ type: 'press' })
    expect(JSON.stringify(events)).not.toContain('isAdmin')
  })

  it('stores a press and a heartbeat without the telemetry they carried that could not be read, answered received, the rest dead-lettered and counted', async () => {
    const lettersBefore = (await system.gateway.deadLetters.recent(1000)).length
    // A battery gauge past 100 after a charge, a positive RSSI, a NUL in the firmware string:
    // a firmware fault beside the alarm must not cost the alarm.
    await device.publishAsync(topics.event(id), '{"seq":300,"type":"press","battery":101,"rssi":3,"fw":"2.0\\u0000"}', { qos: 1 })
    const received = await acks.waitFor((a) => a.state === 'received' && a.seq === 300)
    expect(received.alertId).toBeTruthy()
    // A heartbeat with a fractional battery is still a sign of life.
    await device.publishAsync(topics.event(id), '{"seq":301,"type":"heartbeat","battery":50.5,"rssi":-70}', { qos: 1 })
    const events = await eventually(async () => {
      const { body } = await system.api('GET', `/v1/events?deviceId=${id}`)
      return (body as any[]).some((e) => e.seq === 301) ? body as any[] : undefined
    }, 5000, 'the heartbeat stored')
    expect(events.find((e) => e.seq === 300)).toMatchObject({ type: 'press' })
    expect(events.find((e) => e.seq === 300)).not.toHaveProperty('battery', 101)
    expect(events.find((e) => e.seq === 301)).toMatchObject({ type: 'heartbeat', rssi: -70 })
    expect(acks.acks.filter((a) => a.state === 'rejected' && (a.seq === 300 || a.seq === 301))).toEqual([])

    // Newest first: the heartbeat's letter, then the press's, each with the whole payload.
    const letters = (await system.gateway.deadLetters.recent(1000)).slice(0, -lettersBefore || undefined)
    expect(letters.map((l) => l.reason)).toEqual([
      expect.stringMatching(/^telemetry dropped, event kept: battery: /),
      expect.stringMatching(/^telemetry dropped, event kept: fw: control characters are not allowed; battery: .*; rssi: /)
    ])
    expect(await metricValue(system.gateway, 'sos_gateway_telemetry_dropped_total', { field: 'battery' })).toBe(2)
    expect(await metricValue(system.gateway, 'sos_gateway_telemetry_dropped_total', { field: 'fw' })).toBe(1)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total')).toBe(cases.length)
  })

  it('stores a press sent with a byte order mark, or with bytes that are not UTF-8 in its firmware string or a field it does not read', async () => {
    await device.publishAsync(topics.event(id), '\ufeff{"seq":400,"type":"press"}', { qos: 1 })
    // A firmware string read from erased flash (0xFF…), beside diagnostics gone the same way.
    const erased = Buffer.concat([Buffer.from('{"seq":401,"type":"press","fw":"'), Buffer.from([0xff, 0xff]), Buffer.from('","diag":"'), Buffer.from([0xfe]), Buffer.from('"}')])
    await device.publishAsync(topics.event(id), erased, { qos: 1 })
    for (const seq of [400, 401]) expect((await acks.waitFor((a) => a.state === 'received' && a.seq === seq)).alertId).toBeTruthy()
    expect(acks.acks.filter((a) => a.state === 'rejected' && (a.seq === 400 || a.seq === 401))).toEqual([])
    const letters = await system.gateway.deadLetters.recent(1)
    expect(letters[0]!.reason).toBe('telemetry dropped, event kept: fw: not valid UTF-8')
  })

  it('stores and answers a press from a device whose clock reads 1970 (its RTC reset)', async () => {
    // Its skew (−56 years) is beyond the 32-bit column: the server once refused the batch, and
    // the gateway sent it again forever while the alarm waited.
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 210, type: 'press', ts: 1000 }), { qos: 1 })
    const received = await acks.waitFor((a) => a.state === 'received' && a.seq === 210)
    expect(received.alertId).toBeTruthy()
  })

  it('flags device clock skew outside −40 s/+20 s and keeps the device time', async () => {
    const now = Date.now()
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 101, type: 'test', ts: now - 120_000 }), { qos: 1 })
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 102, type: 'test', ts: now + 60_000 }), { qos: 1 })
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 103, type: 'test', ts: now }), { qos: 1 })
    const events = await eventually(async () => {
      const { body } = await system.api('GET', `/v1/events?deviceId=${id}&type=test`)
      return (body as any[]).length === 3 ? body as any[] : undefined
    }, 5000, 'three test events stored')
    const bySeq = new Map(events.map((e) => [e.seq, e]))
    expect(bySeq.get(101).skewed).toBe(true)
    expect(bySeq.get(102).skewed).toBe(true)
    expect(bySeq.get(103).skewed).toBe(false)
    expect(bySeq.get(101).skewMs).toBeLessThan(-40_000)
  })
})
