/**
 * A press and its cancel that cross on their way to the server: the press held in a gateway's
 * outbox (a hanging disk, a restart) while the cancel goes from memory or through another
 * gateway. The late press must not open an alert the shop owner already cancelled.
 * Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import { topics, type GatewayEvent } from '../../protocol/index.js'
import { BACKFILL_ALERT_PRESSES } from '../../server/db/migrations/010-early-cancels.js'

const plainBackends = databaseBackends.filter((b) => !b.timescale)

describe.each(plainBackends)('cancels that arrive before their press, on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const t0 = Date.now() - 3600_000

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, { settings: { cancelWindowMs: 30_000 } })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const alertOf = async (id: string) => (await fx.call('GET', `/v1/alerts/${id}`)).body
  const attempts = async (deviceId: string) =>
    fx.db.query<{ result: string, alert_id: string | null }>('SELECT result, alert_id FROM cancel_attempts WHERE device_id = $1 ORDER BY at', [deviceId])
  const acksFor = async (deviceId: string) => {
    const { body } = await fx.call('GET', '/v1/gateway/downlink?after=0&wait=0&limit=1000', undefined, TOKENS.gateway)
    return (body.messages as any[]).filter((m) => m.topic === topics.ack(deviceId)).map((m) => m.payload)
  }

  it('cancels the alert of a press that comes after its cancel, and the device hears cancelled', async () => {
    await fx.provision('late-1', { kind: 'counter', pin: '1357' })
    const cancel = gatewayEvent('late-1', { seq: 6, boot: 'b1', type: 'cancel', pin: '1357' }, t0 + 4000)
    const [early] = await fx.ingest({ events: [cancel] })
    // Nothing to cancel yet: the device hears why, as before.
    expect(early).toMatchObject({ status: 'stored', ackState: 'rejected', reason: 'no open alert to cancel' })
    expect(await attempts('late-1')).toMatchObject([{ result: 'early', alert_id: null }])

    // The press it followed arrives now, from the outbox that held it.
    const [press] = await fx.ingest({ events: [gatewayEvent('late-1', { seq: 5, boot: 'b1', type: 'press' }, t0)] })
    expect(press).toMatchObject({ status: 'stored', alertId: expect.any(String), alertState: 'cancelled' })
    const alert = await alertOf(press!.alertId!)
    expect(alert.state).toBe('cancelled')
    expect(alert.transitions.map((x: any) => [x.from, x.to, x.actor])).toEqual([[null, 'open', 'device:late-1'], ['open', 'cancelled', 'device:late-1']])
    expect(await attempts('late-1')).toMatchObject([{ result: 'cancelled', alert_id: press!.alertId }])
    expect(await acksFor('late-1')).toContainEqual(expect.objectContaining({ seq: 6, state: 'cancelled', alertId: press!.alertId }))

    // The press sent again changes nothing; a new press later opens a new alert as usual.
    expect((await fx.ingest({ events: [gatewayEvent('late-1', { seq: 5, boot: 'b1', type: 'press' }, t0)] }))[0]).toMatchObject({ status: 'duplicate' })
    const [next] = await fx.ingest({ events: [gatewayEvent('late-1', { seq: 7, boot: 'b1', type: 'press' }, t0 + 60_000)] })
    expect(next).toMatchObject({ status: 'stored', alertState: 'open' })
    expect(next!.alertId).not.toBe(press!.alertId)
  })

  it('cancels a late press too when its cancel stood down the alert of the press before it', async () => {
    await fx.provision('late-2', { kind: 'counter', pin: '2468' })
    const [first] = await fx.ingest({ events: [gatewayEvent('late-2', { seq: 1, type: 'press' }, t0)] })
    const [cancel] = await fx.ingest({ events: [gatewayEvent('late-2', { seq: 3, type: 'cancel', pin: '2468' }, t0 + 5000)] })
    expect(cancel).toMatchObject({ alertId: first!.alertId, alertState: 'cancelled' })
    // The second press, sent before the cancel, comes last: it opens no alert left standing.
    const [second] = await fx.ingest({ events: [gatewayEvent('late-2', { seq: 2, type: 'press' }, t0 + 2000)] })
    expect(second).toMatchObject({ status: 'stored', alertState: 'cancelled' })
    expect(second!.alertId).not.toBe(first!.alertId)
    expect(await attempts('late-2')).toMatchObject([{ result: 'cancelled', alert_id: first!.alertId }])
  })

  it('leaves the alert open when the cancel came first but could not have cancelled it', async () => {
    await fx.provision('late-3', { kind: 'counter', pin: '9753' })
    const open = async (press: ReturnType<typeof gatewayEvent>) => {
      const [result] = await fx.ingest({ events: [press] })
      expect(result).toMatchObject({ status: 'stored', alertState: 'open' })
      const resolved = await fx.call('POST', `/v1/alerts/${result!.alertId}/resolve`, { outcome: 'real', note: 'next case' }, await fx.tokenFor('operator'))
      expect(resolved.status).toBe(200)
    }
    // The wrong PIN.
    await fx.ingest({ events: [gatewayEvent('late-3', { seq: 11, type: 'cancel', pin: '0000' }, t0 + 3000)] })
    await open(gatewayEvent('late-3', { seq: 10, type: 'press' }, t0))
    // The right PIN, but more than the window after the press.
    await fx.ingest({ events: [gatewayEvent('late-3', { seq: 21, type: 'cancel', pin: '9753' }, t0 + 100_000)] })
    await open(gatewayEvent('late-3', { seq: 20, type: 'press' }, t0 + 60_000))
    // The right PIN, but sent before the press (a lower seq): the press is a new alarm.
    await fx.ingest({ events: [gatewayEvent('late-3', { seq: 30, type: 'cancel', pin: '9753' }, t0 + 200_000)] })
    await open(gatewayEvent('late-3', { seq: 31, type: 'press' }, t0 + 203_000))
    // The right PIN, but from another boot of the device.
    await fx.ingest({ events: [gatewayEvent('late-3', { seq: 41, boot: 'new', type: 'cancel', pin: '9753' }, t0 + 303_000)] })
    await open(gatewayEvent('late-3', { seq: 40, boot: 'old', type: 'press' }, t0 + 300_000))
    expect((await attempts('late-3')).map((a) => a.result)).toEqual(['wrong_pin', 'early', 'early', 'early'])
  })

  it('leaves a new alarm open after the device restarted its seq, and after too many wrong PINs', async () => {
    await fx.provision('late-4', { kind: 'counter', pin: '8642' })
    await fx.ingest({ events: [1, 2, 3].map((seq) => gatewayEvent('late-4', { seq, type: 'heartbeat' }, t0 - 600_000 + seq)) })
    const [first] = await fx.ingest({ events: [gatewayEvent('late-4', { seq: 40, type: 'press' }, t0)] })
    const [cancel] = await fx.ingest({ events: [gatewayEvent('late-4', { seq: 41, type: 'cancel', pin: '8642' }, t0 + 5000)] })
    expect(cancel).toMatchObject({ alertId: first!.alertId, alertState: 'cancelled' })
    // The board restarts its count without a new boot; a real alarm 20 s later reuses seq 2,
    // lower than the cancel's, and is stored under an id of its own: it says nothing of order.
    const [real] = await fx.ingest({ events: [gatewayEvent('late-4', { seq: 2, type: 'press' }, t0 + 25_000)] })
    expect(real).toMatchObject({ status: 'stored', alertState: 'open' })

    // Someone tries PINs while the press is on its way: the lockout holds as for an open alert.
    await fx.provision('late-5', { kind: 'counter', pin: '1111' })
    const guesses = ['0000', '1234', '2222', '9999', '4321'].map((pin, i) => gatewayEvent('late-5', { seq: 11 + i, type: 'cancel', pin }, t0 + 1000 + i * 1000))
    await fx.ingest({ events: guesses })
    await fx.ingest({ events: [gatewayEvent('late-5', { seq: 16, type: 'cancel', pin: '1111' }, t0 + 7000)] })
    const [locked] = await fx.ingest({ events: [gatewayEvent('late-5', { seq: 10, type: 'press' }, t0)] })
    expect(locked).toMatchObject({ status: 'stored', alertState: 'open' })
  })

  it('keeps the alert open when a press in the same batch came after the cancel', async () => {
    // The late press and a new alarm, sent after the cancel, reach the server together (one
    // gateway's backlog): the new alarm must stand, on either way a batch is stored.
    await fx.provision('late-7', { kind: 'counter', pin: '7777' })
    await fx.ingest({ events: [gatewayEvent('late-7', { seq: 10, type: 'cancel', pin: '7777' }, t0 + 3000)] })
    const alone = await fx.ingest({ events: [gatewayEvent('late-7', { seq: 9, type: 'press' }, t0), gatewayEvent('late-7', { seq: 12, type: 'press' }, t0 + 10_000)] })
    expect(alone).toMatchObject([{ status: 'stored', alertState: 'open' }, { status: 'stored', alertState: 'open' }])

    await fx.provision('late-8', { kind: 'counter', pin: '8888' })
    const [press] = await fx.ingest({ events: [gatewayEvent('late-8', { seq: 10, type: 'press' }, t0)] })
    expect((await fx.ingest({ events: [gatewayEvent('late-8', { seq: 11, type: 'cancel', pin: '8888' }, t0 + 3000)] }))[0]).toMatchObject({ alertId: press!.alertId, alertState: 'cancelled' })
    const withReport = await fx.ingest({
      events: [
        gatewayEvent('late-8', { seq: 9, type: 'press' }, t0 - 1000),
        gatewayEvent('late-8', { seq: 12, type: 'hold' }, t0 + 20_000),
        gatewayEvent('late-8', { seq: 13, type: 'report', report: { category: 'other', text: 'the door is jammed' } }, t0 + 21_000)
      ]
    })
    expect(withReport.slice(0, 2)).toMatchObject([{ status: 'stored', alertState: 'open' }, { status: 'stored', alertState: 'open' }])
  })

  it('lets an alarm the device raised after its cancel stand, when the cancel comes last', async () => {
    await fx.provision('late-10', { kind: 'counter', pin: '1010' })
    // Press 1 and cancel 2 held up in one gateway; press 3 (a real alarm) came through another.
    const [real] = await fx.ingest({ events: [gatewayEvent('late-10', { seq: 3, type: 'press' }, t0 + 8000)] })
    expect(real).toMatchObject({ status: 'stored', alertState: 'open' })
    const [first, cancel] = await fx.ingest({ events: [gatewayEvent('late-10', { seq: 1, type: 'press' }, t0), gatewayEvent('late-10', { seq: 2, type: 'cancel', pin: '1010' }, t0 + 4000)] })
    expect(first).toMatchObject({ alertId: real!.alertId })
    expect(cancel).toMatchObject({ status: 'stored', ackState: 'rejected', reason: 'pressed again after this cancel: the alarm stands' })
    expect((await alertOf(real!.alertId!)).state).toBe('open')
    expect(await attempts('late-10')).toMatchObject([{ result: 'stale', alert_id: real!.alertId }])
  })

  it('ends a device\'s presses and its cancel, delivered in any order and grouping, as in the order it sent them', async () => {
    let run = 0
    const presses = fc.uniqueArray(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 4 })
    const scenario = presses.chain((seqs) => fc.record({
      seqs: fc.constant(seqs),
      cancelSeq: fc.integer({ min: 1, max: 16 }).filter((c) => !seqs.includes(c)),
      types: fc.array(fc.constantFrom('press' as const, 'hold' as const), { minLength: seqs.length, maxLength: seqs.length }),
      order: fc.array(fc.nat(), { minLength: seqs.length + 1, maxLength: seqs.length + 1 }),
      // Each through a gateway whose clock is off by up to 1.5 s, either way.
      skews: fc.array(fc.integer({ min: -1500, max: 1500 }), { minLength: seqs.length + 1, maxLength: seqs.length + 1 }),
      cuts: fc.array(fc.boolean(), { minLength: seqs.length, maxLength: seqs.length })
    }))
    const deliver = async (sent: GatewayEvent[], cuts: boolean[]) => {
      const batches: GatewayEvent[][] = [[]]
      sent.forEach((e, i) => {
        batches.at(-1)!.push(e)
        if (cuts[i]) batches.push([])
      })
      for (const events of batches.filter((b) => b.length > 0)) await fx.ingest({ events })
      const alerts = (await fx.call('GET', `/v1/alerts?deviceId=${sent[0]!.deviceId}&kind=panic`)).body as Array<{ state: string }>
      return { open: alerts.filter((a) => a.state === 'open').length, cancelled: alerts.filter((a) => a.state === 'cancelled').length }
    }
    await fc.assert(fc.asyncProperty(scenario, async ({ seqs, cancelSeq, types, order, skews, cuts }) => {
      // Sent a second apart, ending now: a fast gateway's stamps are ahead of the server's clock.
      const at = (seq: number, i: number) => Date.now() - 16_000 + seq * 1000 + skews[i]!
      const events = (id: string) => [
        ...seqs.map((seq, i) => gatewayEvent(id, { seq, type: types[i]! }, at(seq, i))),
        gatewayEvent(id, { seq: cancelSeq, type: 'cancel', pin: '4242' }, at(cancelSeq, seqs.length))
      ]
      const after = seqs.some((s) => s > cancelSeq)
      // In the order sent, however batched: the presses before the cancel make one alert it
      // cancels; those after it, one left open.
      const inOrder = `order-${++run}`
      await fx.provision(inOrder, { kind: 'counter', pin: '4242' })
      expect(await deliver(events(inOrder).sort((a, b) => a.event.seq - b.event.seq), cuts))
        .toEqual({ open: after ? 1 : 0, cancelled: seqs.some((s) => s < cancelSeq) ? 1 : 0 })
      // Shuffled: the presses may join one alert, but one is open exactly when the device
      // pressed after its cancel.
      const shuffled = `order-${++run}`
      await fx.provision(shuffled, { kind: 'counter', pin: '4242' })
      const sent = events(shuffled).map((e, i) => ({ e, key: order[i]! })).sort((a, b) => a.key - b.key).map((x) => x.e)
      expect((await deliver(sent, cuts)).open).toBe(after ? 1 : 0)
    }), { numRuns: 40 })
  }, 120_000)

  it('lets an alarm stand that joins the late press\'s alert before the cancel that came first is applied', async () => {
    await fx.provision('late-11', { kind: 'counter', pin: '1111' })
    await fx.ingest({ events: [gatewayEvent('late-11', { seq: 2, type: 'cancel', pin: '1111' }, t0 + 3000, 'gw-a')] })
    // Press 1, held in one gateway, comes alone: committed by itself. Right after, before its
    // cancel is applied, press 3 (a real alarm, sent after the cancel) joins its alert.
    const transaction = fx.db.transaction.bind(fx.db)
    let real: Awaited<ReturnType<Fixture['ingest']>> | undefined
    fx.db.transaction = (async (fn: Parameters<typeof transaction>[0]) => {
      real ??= await fx.ingest({ events: [gatewayEvent('late-11', { seq: 3, type: 'press' }, t0 + 9000, 'gw-c')] })
      return transaction(fn)
    }) as typeof fx.db.transaction
    let late
    try {
      late = await fx.ingest({ events: [gatewayEvent('late-11', { seq: 1, type: 'press' }, t0, 'gw-b')] })
    } finally {
      fx.db.transaction = transaction
    }
    expect(real![0]!.alertId).toBe(late[0]!.alertId)
    expect(late[0]).toMatchObject({ alertState: 'open' })
    expect((await alertOf(late[0]!.alertId!)).state).toBe('open')
  })

  it('applies a cancel refused as stale to a press it followed that opens a later alert', async () => {
    await fx.provision('late-12', { kind: 'counter', pin: '1212' })
    // Press 3 (sent after the cancel) comes first; cancel 2 then finds its alert and is stale.
    const [real] = await fx.ingest({ events: [gatewayEvent('late-12', { seq: 3, type: 'press' }, t0 + 8000, 'gw-a')] })
    expect((await fx.ingest({ events: [gatewayEvent('late-12', { seq: 2, type: 'cancel', pin: '1212' }, t0 + 4000, 'gw-b')] }))[0]).toMatchObject({ ackState: 'rejected' })
    const resolved = await fx.call('POST', `/v1/alerts/${real!.alertId}/resolve`, { outcome: 'real', note: 'handled' }, await fx.tokenFor('operator'))
    expect(resolved.status).toBe(200)
    // Press 1, which the cancel followed, comes last: its alert is cancelled.
    const [late] = await fx.ingest({ events: [gatewayEvent('late-12', { seq: 1, type: 'press' }, t0, 'gw-c')] })
    expect(late).toMatchObject({ status: 'stored', alertState: 'cancelled' })
  })

  it('keeps the presses of active alerts of devices with a PIN only, and fills them in for alerts active at the upgrade', async () => {
    const presses = async (alertId: string) => (await fx.db.query('SELECT seq FROM alert_presses WHERE alert_id = $1 ORDER BY seq', [alertId])).map((r: any) => Number(r.seq))
    await fx.provision('button-13')
    const [button] = await fx.ingest({ events: [gatewayEvent('button-13', { seq: 1, type: 'press' }, t0)] })
    expect(await presses(button!.alertId!)).toEqual([])
    await fx.provision('late-13', { kind: 'counter', pin: '1313' })
    const [first] = await fx.ingest({ events: [gatewayEvent('late-13', { seq: 1, type: 'press' }, t0)] })
    await fx.ingest({ events: [gatewayEvent('late-13', { seq: 3, type: 'hold' }, t0 + 8000)] })
    expect(await presses(first!.alertId!)).toEqual([1, 3])
    // An alert opened before version 10 has no rows: the migration fills them in.
    await fx.db.query('DELETE FROM alert_presses')
    await fx.db.query(BACKFILL_ALERT_PRESSES)
    expect(await presses(first!.alertId!)).toEqual([1, 3])
    expect(await presses(button!.alertId!)).toEqual([])
    // So a cancel held up since before the hold still leaves it standing.
    const [stale] = await fx.ingest({ events: [gatewayEvent('late-13', { seq: 2, type: 'cancel', pin: '1313' }, t0 + 4000)] })
    expect(stale).toMatchObject({ ackState: 'rejected', reason: 'pressed again after this cancel: the alarm stands' })
    // Once the alert is closed, its presses are let go.
    expect((await fx.call('POST', `/v1/alerts/${first!.alertId}/resolve`, { outcome: 'real', note: 'handled' }, await fx.tokenFor('operator'))).status).toBe(200)
    expect(await presses(first!.alertId!)).toEqual([])
  })

  it('announces each alert as it ends when one of two late cancels cannot be applied', async () => {
    await fx.provision('late-9a', { kind: 'counter', pin: '9999' })
    await fx.provision('late-9b', { kind: 'counter', pin: '9999' })
    await fx.ingest({ events: ['late-9a', 'late-9b'].map((id) => gatewayEvent(id, { seq: 2, type: 'cancel', pin: '9999' }, t0 + 3000)) })
    const heard: string[] = []
    fx.app.services.bus.on('alert', (a) => { if (a.deviceId.startsWith('late-9')) heard.push(`${a.deviceId} ${a.state}`) })
    // The second cancelling transaction fails (a connection lost) after the first committed.
    const transaction = fx.db.transaction.bind(fx.db)
    let n = 0
    fx.db.transaction = (async (fn: Parameters<typeof transaction>[0]) => {
      if (++n === 2) throw Object.assign(new Error('connection lost (for this test)'), { code: '08006' })
      return transaction(fn)
    }) as typeof fx.db.transaction
    let results
    try {
      results = await fx.ingest({ events: ['late-9a', 'late-9b'].map((id) => gatewayEvent(id, { seq: 1, type: 'press' }, t0)) })
    } finally {
      fx.db.transaction = transaction
    }
    expect(results).toMatchObject([{ alertState: 'cancelled' }, { alertState: 'open' }])
    const states = await Promise.all(results.map(async (r) => (await alertOf(r.alertId!)).state))
    expect(states).toEqual(['cancelled', 'open'])
    expect(heard.sort()).toEqual(['late-9a cancelled', 'late-9b open'])
  })

  it('announces the alert, open, when the cancel that came first cannot be applied', async () => {
    await fx.provision('late-6', { kind: 'counter', pin: '5555' })
    await fx.ingest({ events: [gatewayEvent('late-6', { seq: 2, type: 'cancel', pin: '5555' }, t0 + 3000)] })
    const heard: string[] = []
    fx.app.services.bus.on('alert', (a) => { if (a.deviceId === 'late-6') heard.push(a.state) })
    // The database fails the look for cancels once (a connection lost), after the press committed.
    const query = fx.db.query.bind(fx.db)
    let failures = 0
    fx.db.query = (async (sql: string, params?: unknown[]) => {
      if (sql.includes('FROM cancel_attempts') && sql.includes('at_ms')) {
        failures++
        throw Object.assign(new Error('connection lost (for this test)'), { code: '08006' })
      }
      return query(sql, params)
    }) as typeof fx.db.query
    try {
      const [press] = await fx.ingest({ events: [gatewayEvent('late-6', { seq: 1, type: 'press' }, t0)] })
      expect(press).toMatchObject({ status: 'stored', alertState: 'open' })
    } finally {
      fx.db.query = query
    }
    expect(failures).toBe(1)
    expect(heard).toEqual(['open'])
  })
})
