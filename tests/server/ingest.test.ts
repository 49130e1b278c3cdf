/**
 * Ingest through `POST /v1/ingest` as a gateway calls it: coalescing, device cancels with PIN,
 * silent devices, presence, dead letters, kiosk reports, test events, and exactly-once storage
 * at volume. Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import { topics } from '../../protocol/index.js'

const plainBackends = databaseBackends.filter((b) => !b.timescale)

describe.each(plainBackends)('ingest on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const t0 = Date.now() - 600_000

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, { settings: { cancelWindowMs: 30_000 } })
    await fx.provision('btn-1')
    await fx.provision('shop-1', { kind: 'counter', pin: '4321' })
    await fx.provision('kiosk-1', { kind: 'kiosk' })
    // For these tests PostgreSQL refuses an event whose firmware or extra fields say
    // `unstorable`, as it refuses a value out of a column's range. (The text a buggy gateway
    // could send that it really refuses, NUL and lone surrogates, is made storable before.)
    await fx.db.query(`CREATE FUNCTION refuse_unstorable () RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.fw = 'unstorable' OR NEW.data::text LIKE '%unstorable%' THEN
          RAISE EXCEPTION 'value out of range (for this test)' USING ERRCODE = '22003';
        END IF;
        RETURN NEW;
      END $$`)
    await fx.db.query('CREATE TRIGGER refuse_unstorable BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_unstorable()')
    // And a presence change dated before 1971, as it refuses a time no timestamp holds (which a
    // gateway can no longer send: the ingest schema bounds its times to a JavaScript date's).
    await fx.db.query(`CREATE FUNCTION refuse_presence_before_1971 () RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.presence_at < '1971-01-01' THEN
          RAISE EXCEPTION 'timestamp out of range (for this test)' USING ERRCODE = '22008';
        END IF;
        RETURN NEW;
      END $$`)
    await fx.db.query('CREATE TRIGGER refuse_presence_before_1971 BEFORE UPDATE ON devices FOR EACH ROW EXECUTE FUNCTION refuse_presence_before_1971()')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const alertOf = async (id: string) => (await fx.call('GET', `/v1/alerts/${id}`)).body
  const downlinkFor = async (topic: string) => {
    const { body } = await fx.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)
    return (body.messages as any[]).filter((m) => m.topic === topic)
  }

  it('coalesces ten presses in 30 s from one device into one alert with press count 10', async () => {
    const presses = Array.from({ length: 10 }, (_, i) => gatewayEvent('btn-1', { seq: i + 1, type: 'press' }, t0 + i * 3000))
    // Sent as the forwarder would: some alone, some together.
    const results = [...await fx.ingest({ events: presses.slice(0, 1) }), ...await fx.ingest({ events: presses.slice(1, 4) }), ...await fx.ingest({ events: presses.slice(4) })]
    const alertIds = new Set(results.map((r) => r.alertId))
    expect(alertIds.size).toBe(1)
    const alert = await alertOf([...alertIds][0]!)
    expect(alert).toMatchObject({ kind: 'panic', state: 'open', pressCount: 10, lastPressAt: new Date(t0 + 27_000).toISOString() })
    expect(alert.transitions.map((t: any) => t.to)).toEqual(['open'])
    const { body: open } = await fx.call('GET', '/v1/alerts?deviceId=btn-1')
    expect(open).toHaveLength(1)
  })

  it('stores a press from a device whose clock is years off (an RTC reset to 1970, or far ahead), with the batch it came in', async () => {
    await fx.provision('clock-off')
    await fx.provision('clock-right')
    const t = t0 + 5000
    const atClock = (seq: number, ts: number) => ({ ...gatewayEvent('clock-off', { seq, type: 'press', ts }, t + seq), skewMs: ts - (t + seq), skewed: true })
    const results = await fx.ingest({ events: [atClock(300, 1000), atClock(301, 8_000_000_000_000_000), gatewayEvent('clock-right', { seq: 300, type: 'test' }, t)] })
    expect(results.map((r) => r.status)).toEqual(['stored', 'stored', 'stored'])
    expect(results[0]!.alertId).toBeTruthy()
    const { body: events } = await fx.call('GET', '/v1/events?deviceId=clock-off&type=press')
    const bySeq = new Map((events as any[]).map((e) => [e.seq, e]))
    // The skew is kept as far as its column reaches (±24.8 days); `skewed` says it is off.
    expect(bySeq.get(300)).toMatchObject({ skewed: true, skewMs: -2_147_483_648, deviceTs: new Date(1000).toISOString() })
    expect(bySeq.get(301)).toMatchObject({ skewed: true, skewMs: 2_147_483_647 })
  })

  it('stores the rest of a batch when the database refuses one of its events for good: that one is kept as a dead letter and answered refused', async () => {
    // Data the database refuses (telemetry out of a column's range): the whole batch failed, and
    // was resent forever.
    await fx.provision('poison-a')
    await fx.provision('poison-b')
    const t = t0 + 7000
    const batch = [
      gatewayEvent('poison-a', { seq: 1, type: 'test' }, t, 'gw-poison'),
      gatewayEvent('poison-b', { seq: 1, type: 'test', fw: 'unstorable' }, t + 1, 'gw-poison'),
      // A press is never refused for what rides along: it is stored bare, its alert raised.
      gatewayEvent('poison-a', { seq: 2, type: 'press', battery: 80, fw: 'unstorable' }, t + 2, 'gw-poison'),
      gatewayEvent('poison-b', { seq: 2, type: 'report', report: { category: 'noise', text: 'loud unstorable music' } }, t + 3, 'gw-poison')
    ]
    const first = await fx.ingest({ events: batch })
    expect(first.map((r) => r.status)).toEqual(['stored', 'refused', 'stored', 'refused'])
    expect(first[1]).toMatchObject({ ackState: 'rejected', reason: 'could not be stored; kept for the operators' })
    expect(first[2]).toMatchObject({ alertState: 'open' })
    expect((await alertOf(first[2]!.alertId!)).kind).toBe('panic')
    // Sent again (the gateway's answer was lost): the same answers, nothing stored or kept twice.
    expect((await fx.ingest({ events: batch })).map((r) => r.status)).toEqual(['duplicate', 'refused', 'duplicate', 'refused'])
    const { body: refused } = await fx.call('GET', '/v1/dead-letters?deviceId=poison-b')
    expect(refused.map((l: any) => [l.topic, l.reason.slice(0, 21)])).toEqual([['sos/v1/poison-b/event', 'could not be stored: '], ['sos/v1/poison-b/event', 'could not be stored: ']])
    const { body: strippedOf } = await fx.call('GET', '/v1/dead-letters?deviceId=poison-a')
    expect(strippedOf.map((l: any) => l.reason.slice(0, 51))).toEqual(['stored without its telemetry and extra fields, whic'])
    const { body: stored } = await fx.call('GET', '/v1/events?deviceId=poison-a')
    expect(stored.map((e: any) => [e.seq, e.type])).toEqual([[2, 'press'], [1, 'test']])
    const metrics = (await fx.app.inject({ url: '/metrics' })).body
    expect(metrics).toMatch(/sos_dead_letters_total\{gateway="gw-poison"\} 3\n/)
  })

  it('stores an event whose keys hold NUL or whose text holds lone surrogates (a buggy gateway\'s), with U+FFFD in their place', async () => {
    // PostgreSQL refuses both (text and jsonb cannot hold NUL; jsonb refuses a lone surrogate).
    await fx.provision('odd-text')
    const odd = gatewayEvent('odd-text', { seq: 1, type: 'test' }, t0 + 7500)
    const results = await fx.ingest({
      events: [
        { ...odd, event: { ...odd.event, extra: { text: 'loud \ud800 music\u0000' }, 'key\u0000': 'x\udfff', '\ud83d': 1 } as never },
        gatewayEvent('odd-text', { seq: 2, type: 'heartbeat', fw: 'v1\ud800' }, t0 + 7600)
      ]
    })
    expect(results.map((r) => r.status)).toEqual(['stored', 'stored'])
    const { body: events } = await fx.call('GET', '/v1/events?deviceId=odd-text')
    const bySeq = new Map((events as any[]).map((e) => [e.seq, e]))
    expect(bySeq.get(1).data).toEqual({ extra: { text: 'loud \ufffd music\ufffd' }, 'key\ufffd': 'x\ufffd', '\ufffd': 1 })
    expect(bySeq.get(2).fw).toBe('v1\ufffd')
  })

  it('answers a body nested a hundred thousand deep 400, and refuses an event whose field nests that deep while storing its batch (a press bare)', async () => {
    const post = (payload: string) => fx.app.inject({ method: 'POST', url: '/v1/ingest', headers: { authorization: `Bearer ${TOKENS.gateway}`, 'content-type': 'application/json' }, payload })
    const deep = '['.repeat(100_000) + ']'.repeat(100_000)
    expect((await post(deep)).statusCode).toBe(400)
    await fx.provision('deep-a')
    const events = [
      gatewayEvent('deep-a', { seq: 1, type: 'test' }, t0 + 7700, 'gw-deep'),
      gatewayEvent('deep-a', { seq: 2, type: 'press' }, t0 + 7701, 'gw-deep'),
      gatewayEvent('deep-a', { seq: 3, type: 'heartbeat' }, t0 + 7702, 'gw-deep')
    ]
    // Written out by hand: no serializer of ours would write it (JSON.stringify runs out of stack).
    const body = JSON.stringify({ events }).replace('"type":"press"', `"type":"press","x":${deep}`).replace('"type":"heartbeat"', `"type":"heartbeat","x":${deep}`)
    const response = await post(body)
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json().results).toMatchObject([{ status: 'stored' }, { status: 'stored', alertState: 'open' }, { status: 'refused', ackState: 'rejected' }])
    const { body: letters } = await fx.call('GET', '/v1/dead-letters?deviceId=deep-a')
    expect(letters).toHaveLength(2)
  })

  it('keeps a refused cancel as a dead letter with its PIN masked', async () => {
    await fx.provision('poison-d', { kind: 'counter', pin: '2468' })
    const cancel = gatewayEvent('poison-d', { seq: 1, type: 'cancel', pin: '2468' }, t0 + 9000, 'gw-poison-pin')
    const results = await fx.ingest({ events: [{ ...cancel, event: { ...cancel.event, fw: 'unstorable' } }] })
    expect(results).toMatchObject([{ status: 'refused', ackState: 'rejected' }])
    const { body: letters } = await fx.call('GET', '/v1/dead-letters?deviceId=poison-d')
    expect(letters).toHaveLength(1)
    const kept = Buffer.from(letters[0].payload, 'base64').toString()
    expect(kept).toContain('"pin":"****"')
    expect(kept).not.toContain('2468')
  })

  it('stores the events of a batch whose presence change the database refuses, keeps that change as a dead letter, and applies it at the server\'s time, once', async () => {
    await fx.provision('poison-c')
    const t = t0 + 8000
    const batch = {
      events: [gatewayEvent('poison-c', { seq: 1, type: 'press' }, t)],
      // A time the database refuses (see the trigger above).
      presence: [{ deviceId: 'poison-c', gatewayId: 'gw-poison-presence', state: 'offline' as const, at: 1000, reason: 'will' as const }]
    }
    const results = await fx.ingest(batch)
    expect(results).toMatchObject([{ status: 'stored', alertState: 'open' }])
    // Resent (its answer lost): nothing kept or raised twice.
    expect(await fx.ingest(batch)).toMatchObject([{ status: 'duplicate' }])
    const { body: letters } = await fx.call('GET', '/v1/dead-letters?deviceId=poison-c')
    expect(letters.map((l: any) => l.topic)).toEqual(['sos/v1/poison-c/status'])
    expect(letters[0].reason).toMatch(/^presence change could not be stored: /)
    expect(JSON.parse(Buffer.from(letters[0].payload, 'base64').toString())).toMatchObject({ state: 'offline', at: 1000 })
    const { body: offline } = await fx.call('GET', '/v1/alerts?kind=device_offline&deviceId=poison-c')
    expect(offline).toMatchObject([{ state: 'open', pressCount: 1 }])
    expect((await alertOf(offline[0].id)).transitions).toMatchObject([{ to: 'open', actor: 'gateway:gw-poison-presence' }])
    // Back online, its gateway's clock put right: after the change applied at the server's time.
    await fx.ingest({ presence: [{ deviceId: 'poison-c', gatewayId: 'gw-poison-presence', state: 'online', at: Date.now() + 1, reason: 'connected' }] })
    expect(await alertOf(offline[0].id)).toMatchObject({ state: 'resolved' })
    // The first batch resent once more, late (its gateway never heard the answer): the offline
    // in it was applied the first time, and is not again now that the device is back.
    await fx.ingest(batch)
    expect((await fx.call('GET', '/v1/alerts?kind=device_offline&deviceId=poison-c&state=open')).body).toEqual([])
  })

  it('stores a batch of routine events alone (one statement, no transaction) once, with device health, telling silent devices so', async () => {
    const batch = [gatewayEvent('shop-1', { seq: 100, type: 'test', battery: 55, rssi: -70 }, t0 + 1000), gatewayEvent('btn-1', { seq: 100, type: 'heartbeat' }, t0 + 2000)]
    const first = await fx.ingest({ events: batch })
    expect(first).toMatchObject([{ status: 'stored', silent: true }, { status: 'stored' }])
    expect(first[1]!.silent).toBeUndefined()
    expect(await fx.ingest({ events: batch })).toMatchObject([{ status: 'duplicate', silent: true }, { status: 'duplicate' }])
    const { body: shop } = await fx.call('GET', '/v1/devices/shop-1')
    expect(shop).toMatchObject({ battery: 55, rssi: -70, lastSeenAt: new Date(t0 + 1000).toISOString() })
  })

  it('raises the presses of a batch in the statement that stores it (no transaction); a resend joins nothing twice', async () => {
    await fx.provision('btn-2')
    await fx.provision('btn-3')
    const t = t0 + 120_000
    const batch = [
      gatewayEvent('btn-2', { seq: 1, type: 'press' }, t),
      gatewayEvent('btn-2', { seq: 2, type: 'test' }, t + 500),
      gatewayEvent('btn-3', { seq: 1, type: 'hold' }, t + 700),
      gatewayEvent('btn-2', { seq: 3, type: 'press' }, t + 2000),
      gatewayEvent('btn-3', { seq: 2, type: 'tamper' }, t + 900)
    ]
    // Spies call through: the real database answers.
    const query = vi.spyOn(fx.db, 'query')
    const transaction = vi.spyOn(fx.db, 'transaction')
    let results
    let statements: string[]
    try {
      results = await fx.ingest({ events: batch })
      statements = query.mock.calls.map(([sql]) => sql)
    } finally {
      query.mockRestore()
      transaction.mockRestore()
    }
    expect(transaction).not.toHaveBeenCalled()
    expect(statements.filter((sql) => sql.includes('INSERT INTO events') || sql.includes('INSERT INTO alerts'))).toHaveLength(1)
    expect(statements.find((sql) => sql.includes('INSERT INTO events'))).toContain('INSERT INTO alerts')

    const [press, test, hold, again, tamper] = results
    expect(press).toMatchObject({ status: 'stored', alertState: 'open' })
    expect(again!.alertId).toBe(press!.alertId)
    expect(test!.alertId).toBeUndefined()
    expect(hold).toMatchObject({ status: 'stored', alertState: 'open' })
    expect(tamper).toMatchObject({ status: 'stored', alertState: 'open' })
    expect(new Set([press!.alertId, hold!.alertId, tamper!.alertId]).size).toBe(3)
    const panic = await alertOf(press!.alertId!)
    expect(panic).toMatchObject({ kind: 'panic', state: 'open', pressCount: 2, openedAt: new Date(t).toISOString(), lastPressAt: new Date(t + 2000).toISOString() })
    expect(panic.transitions).toMatchObject([{ from: null, to: 'open', actor: 'device:btn-2', at: new Date(t).toISOString() }])
    expect(await alertOf(tamper!.alertId!)).toMatchObject({ kind: 'tamper', deviceId: 'btn-3', pressCount: 1 })

    // The gateway resends the batch (it never heard the answer): nothing is counted twice.
    expect((await fx.ingest({ events: batch })).map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate'])
    expect(await alertOf(press!.alertId!)).toMatchObject({ pressCount: 2 })
    // A later press joins the open alert without opening it again.
    const [later] = await fx.ingest({ events: [gatewayEvent('btn-2', { seq: 4, type: 'press' }, t + 9000)] })
    expect(later).toMatchObject({ status: 'stored', alertId: press!.alertId, alertState: 'open' })
    const joined = await alertOf(press!.alertId!)
    expect(joined).toMatchObject({ pressCount: 3, lastPressAt: new Date(t + 9000).toISOString() })
    expect(joined.transitions).toHaveLength(1)
  })

  it('cancels only with the right PIN inside the window; the device hears cancelled or rejected', async () => {
    const [press] = await fx.ingest({ events: [gatewayEvent('shop-1', { seq: 1, type: 'press' }, t0)] })
    expect(press).toMatchObject({ status: 'stored', alertState: 'open', silent: true })

    const [wrong] = await fx.ingest({ events: [gatewayEvent('shop-1', { seq: 2, type: 'cancel', pin: '0000' }, t0 + 5000)] })
    expect(wrong).toMatchObject({ status: 'stored', ackState: 'rejected', reason: 'wrong PIN', silent: true })
    expect((await alertOf(press!.alertId!)).state).toBe('open')
    // A resent wrong cancel hears the same and changes nothing.
    const [resent] = await fx.ingest({ events: [gatewayEvent('shop-1', { seq: 2, type: 'cancel', pin: '0000' }, t0 + 5000)] })
    expect(resent).toMatchObject({ status: 'duplicate', ackState: 'rejected', reason: 'wrong PIN' })

    const [right] = await fx.ingest({ events: [gatewayEvent('shop-1', { seq: 3, type: 'cancel', pin: '4321' }, t0 + 20_000)] })
    expect(right).toMatchObject({ status: 'stored', alertId: press!.alertId, alertState: 'cancelled' })
    expect(right!.ackState).toBeUndefined()
    const cancelled = await alertOf(press!.alertId!)
    expect(cancelled.state).toBe('cancelled')
    expect(cancelled.transitions.at(-1)).toMatchObject({ from: 'open', to: 'cancelled', actor: 'device:shop-1' })
    // The device hears `cancelled` (through the gateway's downlink), silently.
    expect((await downlinkFor(topics.ack('shop-1'))).map((m) => m.payload)).toEqual([
      { seq: 3, state: 'cancelled', alertId: press!.alertId, silent: true }
    ])

    const attempts = await fx.db.query<{ result: string }>("SELECT result FROM cancel_attempts WHERE device_id = 'shop-1' ORDER BY at")
    expect(attempts.map((a) => a.result)).toEqual(['wrong_pin', 'cancelled'])
  })

  it('raises the presses of one batch together, yet a cancel in the batch cancels only the alert opened before it', async () => {
    await fx.provision('shop-2', { kind: 'counter', pin: '2468' })
    const t = t0 + 300_000
    const results = await fx.ingest({
      events: [
        gatewayEvent('shop-2', { seq: 1, type: 'press' }, t),
        gatewayEvent('shop-2', { seq: 2, type: 'press' }, t + 1000),
        gatewayEvent('shop-2', { seq: 3, type: 'cancel', pin: '2468' }, t + 5000),
        gatewayEvent('shop-2', { seq: 4, type: 'press' }, t + 8000),
        gatewayEvent('shop-2', { seq: 5, type: 'press' }, t + 9000)
      ]
    })
    const [first, second, cancel, third, fourth] = results
    expect(second!.alertId).toBe(first!.alertId)
    expect(cancel).toMatchObject({ alertId: first!.alertId, alertState: 'cancelled' })
    expect(third!.alertId).not.toBe(first!.alertId)
    expect(fourth).toMatchObject({ alertId: third!.alertId, alertState: 'open' })
    const cancelled = await alertOf(first!.alertId!)
    expect(cancelled).toMatchObject({ state: 'cancelled', pressCount: 2 })
    expect(cancelled.transitions.map((x: any) => x.to)).toEqual(['open', 'cancelled'])
    const reopened = await alertOf(third!.alertId!)
    expect(reopened).toMatchObject({ state: 'open', pressCount: 2, openedAt: new Date(t + 8000).toISOString(), lastPressAt: new Date(t + 9000).toISOString() })
    expect(reopened.transitions.map((x: any) => x.to)).toEqual(['open'])
  })

  it('refuses a cancel after the window, even with the right PIN', async () => {
    const [press] = await fx.ingest({ events: [gatewayEvent('shop-1', { seq: 10, type: 'press' }, t0 + 100_000)] })
    const [late] = await fx.ingest({ events: [gatewayEvent('shop-1', { seq: 11, type: 'cancel', pin: '4321' }, t0 + 131_000)] })
    expect(late).toMatchObject({ status: 'stored', ackState: 'rejected' })
    expect(late!.reason).toMatch(/cancel window \(30 s\) has passed/)
    expect((await alertOf(press!.alertId!)).state).toBe('open')
    // A button without a PIN cannot cancel at all.
    const [noPin] = await fx.ingest({ events: [gatewayEvent('btn-1', { seq: 50, type: 'cancel', pin: '1234' }, t0 + 28_000)] })
    expect(noPin).toMatchObject({ ackState: 'rejected', reason: 'this device has no cancel PIN' })
  })

  it('raises device_offline on presence offline (once), and closes it when the device is back', async () => {
    const offline = { deviceId: 'btn-1', gatewayId: 'gw-test', state: 'offline' as const, at: t0 + 200_000, reason: 'will' as const }
    await fx.ingest({ presence: [offline] })
    await fx.ingest({ presence: [offline] }) // the same batch resent
    await fx.ingest({ presence: [{ ...offline, at: t0 + 210_000, reason: 'heartbeat_missed' }] })
    const { body: alerts } = await fx.call('GET', '/v1/alerts?deviceId=btn-1&kind=device_offline')
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ state: 'open', pressCount: 2 })
    expect((await fx.call('GET', '/v1/devices/btn-1')).body.online).toBe(false)

    await fx.ingest({ presence: [{ ...offline, state: 'online', at: t0 + 220_000, reason: 'connected' }] })
    const closed = await alertOf(alerts[0].id)
    expect(closed.state).toBe('resolved')
    expect(closed.transitions.at(-1)).toMatchObject({ from: 'open', to: 'resolved', actor: 'gateway:gw-test', note: 'back online' })
    expect((await fx.call('GET', '/v1/devices/btn-1')).body.online).toBe(true)
    // An older change arriving late does not undo the newer one.
    await fx.ingest({ presence: [{ ...offline, at: t0 + 215_000 }] })
    expect((await fx.call('GET', '/v1/devices/btn-1')).body.online).toBe(true)
  })

  it('stores dead letters once and counts them', async () => {
    const letter = { gatewayId: 'gw-test', deviceId: 'btn-1', topic: topics.event('btn-1'), reason: 'payload is not JSON', payload: Buffer.from('{oops').toString('base64'), receivedAt: t0 }
    await fx.ingest({ deadLetters: [letter] })
    await fx.ingest({ deadLetters: [letter] })
    const { body } = await fx.call('GET', '/v1/dead-letters?deviceId=btn-1')
    expect(body).toHaveLength(1)
    expect(body[0]).toMatchObject({ reason: 'payload is not JSON', topic: 'sos/v1/btn-1/event' })
    const metrics = await fx.app.inject({ url: '/metrics' })
    expect(metrics.body).toMatch(/sos_dead_letters_total\{gateway="gw-test"\} 1\n/)
  })

  it('files kiosk reports with a ticket id the resident can quote; a resend hears the same ticket', async () => {
    const report = gatewayEvent('kiosk-1', { seq: 1, type: 'report', report: { category: 'noise', text: 'Karaoke after midnight' } }, t0)
    const [first] = await fx.ingest({ events: [report] })
    expect(first!.ticketId).toMatch(/^R-[2-9A-HJKMNP-TV-Z]{4}$/)
    const [again] = await fx.ingest({ events: [report] })
    expect(again).toMatchObject({ status: 'duplicate', ticketId: first!.ticketId })
    const { body: open } = await fx.call('GET', '/v1/reports?state=open')
    expect(open).toEqual([expect.objectContaining({ id: first!.ticketId, category: 'noise', zone: 'zone-a', state: 'open' })])
    // Reports are not alerts.
    expect((await fx.call('GET', '/v1/alerts?deviceId=kiosk-1')).body).toEqual([])

    const closed = await fx.call('POST', `/v1/reports/${first!.ticketId}/close`, { note: 'patrol asked them to stop' })
    expect(closed.body).toMatchObject({ state: 'closed', closedBy: 'admin', note: 'patrol asked them to stop' })
    expect((await fx.call('POST', `/v1/reports/${first!.ticketId}/close`)).status).toBe(409)
    expect((await fx.call('POST', '/v1/reports/R-ZZZZ/close')).status).toBe(404)
  })

  it('records test events without raising alerts', async () => {
    const [result] = await fx.ingest({ events: [gatewayEvent('kiosk-1', { seq: 2, type: 'test' }, t0 + 1000)] })
    expect(result).toMatchObject({ status: 'stored' })
    expect(result!.alertId).toBeUndefined()
    const { body: events } = await fx.call('GET', '/v1/events?deviceId=kiosk-1&type=test')
    expect(events).toHaveLength(1)
    expect((await fx.call('GET', '/v1/alerts?deviceId=kiosk-1')).body).toEqual([])
  })

  it('stores 10,000 events sent in batches, then sent again, exactly once', async () => {
    const events = Array.from({ length: 10_000 }, (_, i) =>
      gatewayEvent(`hb-${String(i % 100).padStart(3, '0')}`, { seq: Math.floor(i / 100), type: 'heartbeat', battery: 80 }, t0 + i))
    const batches = [events.slice(0, 5000), events.slice(5000)]
    for (const batch of batches) expect((await fx.ingest({ events: batch })).every((r) => r.status === 'stored')).toBe(true)
    for (const batch of batches) expect((await fx.ingest({ events: batch })).every((r) => r.status === 'duplicate')).toBe(true)
    const [{ n }] = await fx.db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM events WHERE device_id LIKE 'hb-%'") as [{ n: number }]
    expect(n).toBe(10_000)
  })
})
