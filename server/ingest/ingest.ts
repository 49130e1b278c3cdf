/**
 * Stores batches from gateways exactly once and turns them into alerts, reports, cancels and
 * presence changes.
 *
 * A batch of events that only need storing or raising alerts (heartbeats, tests, presses:
 * nearly all batches) is one statement, atomic by itself, with no transaction around it.
 * Any other batch is one transaction: one statement for the bulk (events and device health;
 * it locks every device the transaction writes), one for dead letters, one or two per event
 * that does something else (cancel, report, presence change). Idempotent: an event id already
 * stored is reported `duplicate` and changes nothing; a resent cancel or report hears the same
 * answer.
 */
import type { FastifyBaseLogger } from 'fastify'
import { Counter } from 'prom-client'
import type { Database, Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { GatewayEvent, IngestBatch, IngestResult } from '../../protocol/index.js'
import { ALERT_KIND_OF_EVENT } from '../alerts/model.js'
import type { AlertLifecycle } from '../alerts/lifecycle.js'
import type { ServerMetrics } from '../metrics.js'
import { storeEvents } from './events.js'
import { alertsOfCauses, placeLateCauses, raiseAlerts, type AlertCause, type RaisedAlert } from './raise-alert.js'
import { markLateCauses } from './late-causes.js'
import { applyCancel, checkPins, previousCancels, type CancelOutcome } from './cancel.js'
import { AHEAD_AT_MOST_MS, aheadOfUs, derivedTime, gatewayClockOffset, onOurClock, presenceOnOurClock, type ClockOffset } from './gateway-clock.js'
import { fileReport, ticketsOf } from './reports.js'
import { applyPresence, type PresenceEffects } from './presence.js'
import { storeDeadLetters } from './dead-letters.js'
import { RefusalSplitter } from './refusals.js'
import { storeWithReusedIds } from './reused-ids.js'
import { alertsOpened, cancelLate, cancelLatePresses, lateCancels, type LateCancel } from './early-cancels.js'
import { misnamedBecause } from './event-ids.js'

export interface IngestOptions {
  /** A device cancel is accepted this long after its alert opened (CANCEL_WINDOW). */
  cancelWindowMs: number
}

interface BatchOutcome {
  fresh: Set<string>
  silent: Set<string>
  raised: Map<string, RaisedAlert>
  cancels: Map<string, CancelOutcome>
  tickets: Map<string, string>
  presence: PresenceEffects
  deadLetters: number
  /** Alerts opened by this batch's presses and cancelled at once by a cancel that came first. */
  cancelledLate: string[]
}

export class Ingestor {
  /**
   * What the database refuses for good (refusals.ts), or cannot store within its statement
   * timeout (statement-timeouts.ts), is stored part by part.
   */
  private readonly split: RefusalSplitter
  /**
   * Gateway times far ahead of the server's clock (gateway-clock.ts), counted by gateway and
   * kind; and logged, once a minute at most per gateway (`aheadLoggedAt`).
   */
  private readonly timesAhead: Counter<'gateway' | 'kind'>
  private readonly aheadLoggedAt = new Map<string, number>()

  constructor (
    private readonly db: Database,
    private readonly bus: Bus,
    private readonly lifecycle: AlertLifecycle,
    private readonly metrics: ServerMetrics,
    private readonly options: IngestOptions,
    private readonly log?: FastifyBaseLogger
  ) {
    this.split = new RefusalSplitter(db, lifecycle, metrics, (effects) => this.announce({ events: [] }, {
      fresh: new Set(), silent: new Set(), raised: new Map(), cancels: new Map(), tickets: new Map(), presence: effects, deadLetters: 0, cancelledLate: []
    }), log)
    this.timesAhead = new Counter({
      name: 'sos_ingest_gateway_times_ahead_total',
      help: `Event receive times and presence changes a gateway dated more than ${AHEAD_AT_MOST_MS / 60_000} minutes ahead of the server's clock, by gateway and kind (event, presence): the events are stored as stamped, but their devices' last seen times, presence changes and reports are dated by the server's clock (a gateway clock that is wrong)`,
      labelNames: ['gateway', 'kind'] as const,
      registers: [metrics.registry]
    })
  }

  /**
   * Stores the batch; what the database refuses for good in it is split off and kept apart
   * (refusals.ts), so one event never holds up the alarms beside it, and a batch too large to
   * store within the statement timeout is stored in smaller parts (statement-timeouts.ts).
   * `arrivedAtMs`: when the request came in, which the batch's `sentAt` is measured against.
   */
  async ingest (batch: IngestBatch, arrivedAtMs = Date.now()): Promise<IngestResult[]> {
    const endTimer = this.metrics.ingestBatchSeconds.startTimer()
    const clock = gatewayClockOffset(batch, arrivedAtMs)
    // An event under an id that is not its own is refused before anything is stored: stored,
    // it would take the id from the event it names (event-ids.ts).
    const misnamed = batch.events.map(misnamedBecause)
    const own = misnamed.some(Boolean) ? { ...batch, events: batch.events.filter((_, i) => !misnamed[i]) } : batch
    this.sayWhenAhead(own, clock)
    const stored = await storeWithReusedIds(this.db, presenceOnOurClock(own, clock), (part) => this.split.store(part, (whole) => this.ingestWhole(whole, clock)), (e) => {
      this.metrics.eventIdsReused.inc({ type: e.event.type })
      this.log?.warn({ deviceId: e.deviceId, eventId: e.eventId, type: e.event.type }, 'ingest: an event reuses the id of an earlier, different one (the device reset its seq without a new boot); stored under a new id')
    })
    const refused = await this.split.refuseUnstored(batch.events.flatMap((e, i) => misnamed[i] ? [{ e, reason: misnamed[i] }] : []))
    if (refused.length > 0) {
      const first = batch.events[misnamed.findIndex(Boolean)]!
      this.log?.warn({ gatewayId: first.gatewayId, refused: refused.length, first: misnamed.find(Boolean) }, 'ingest: events under an id that is not their own (device, boot, seq) refused and kept as dead letters: a gateway forging ids, or a bug')
    }
    // In batch order again.
    const results = misnamed.map((problem) => (problem ? refused : stored).shift()!)
    // Counted once, as finally answered: a part stored again (split, or under a new id) is not counted twice.
    batch.events.forEach((e, i) => this.metrics.ingestedEvents.inc({ type: e.event.type, status: results[i]?.status ?? 'refused' }))
    endTimer()
    return results
  }

  private async ingestWhole (batch: IngestBatch, clock: ClockOffset): Promise<IngestResult[]> {
    const { events } = batch
    const pins = await checkPins(this.db, unique(events).filter((e) => e.event.type === 'cancel'))
    // Late ones dated before a closing of their device's alert are dated at our time instead,
    // under the locks of the alerts they are compared with (late-causes.ts).
    const causes = markLateCauses(unique(events).flatMap((e) => causeOf(e, clock) ?? []))
    const causeOfEvent = new Map(causes.map((c) => [c.eventId!, c]))
    const storeAndRaise = async (): Promise<BatchOutcome> => {
      const { fresh, silent, raised: rows } = await storeEvents(this.db, events, { causes, clock })
      const freshCauses = causes.filter((c) => fresh.has(c.eventId!))
      const raised = new Map<string, RaisedAlert>()
      alertsOfCauses(freshCauses, rows).forEach((alert, i) => { if (alert) raised.set(freshCauses[i]!.eventId!, alert) })
      return { fresh, silent, raised, cancels: new Map(), tickets: new Map(), presence: { raised: [], resolved: [], devices: [] }, deadLetters: 0, cancelledLate: [] }
    }
    const store = async (tx: Queryable): Promise<BatchOutcome> => {
      // Every device this transaction will write is locked by its first statement.
      const presenceDevices = (batch.presence ?? []).map((c) => c.deviceId)
      const { fresh, silent } = await storeEvents(tx, events, { lockToo: presenceDevices, clock })
      // The alerts it may take one at a time below (cancels, presence), and those its alarms
      // join, all first and in device order.
      if (presenceDevices.length > 0 || events.some((e) => e.event.type === 'cancel')) {
        const alertDevices = unique(events).filter((e) => e.event.type === 'cancel' || causeOfEvent.has(e.eventId)).map((e) => e.deviceId)
        await lockActiveAlerts(tx, [...alertDevices, ...presenceDevices])
      }
      // Late alarms placed now, their alerts locked (after those above, being closed ones or
      // the same): before the batch's own cancels close any.
      const placed = new Map((await placeLateCauses(tx, causes.filter((c) => fresh.has(c.eventId!)))).map((c) => [c.eventId!, c]))
      const raised = new Map<string, RaisedAlert>()
      const cancels = new Map<string, CancelOutcome>()
      const tickets = new Map<string, string>()
      // Alarms are raised together (one statement), but always before a cancel that follows
      // them in the batch, so the cancel finds the alert they opened.
      const pending: Array<{ eventId: string, cause: AlertCause }> = []
      const raisePending = async () => {
        const alerts = await raiseAlerts(tx, pending.map((p) => p.cause))
        alerts.forEach((alert, i) => { if (alert) raised.set(pending[i]!.eventId, alert) })
        pending.length = 0
      }
      for (const e of unique(events).filter((e) => fresh.has(e.eventId))) {
        const cause = placed.get(e.eventId)
        if (cause) {
          pending.push({ eventId: e.eventId, cause })
        } else if (e.event.type === 'cancel') {
          await raisePending()
          cancels.set(e.eventId, await applyCancel(tx, e, pins.get(e.eventId) ?? 'missing', this.lifecycle, this.options.cancelWindowMs))
        } else if (e.event.type === 'report') {
          const ticket = await fileReport(tx, e, derivedTime(e.receivedAt, clock, Date.now()))
          if (ticket) tickets.set(e.eventId, ticket)
        }
      }
      await raisePending()
      // Resent cancels and reports hear what they heard the first time.
      const resent = unique(events).filter((e) => !fresh.has(e.eventId))
      for (const [eventId, ticket] of await ticketsOf(tx, resent.filter((e) => e.event.type === 'report').map((e) => e.eventId))) tickets.set(eventId, ticket)
      for (const [eventId, c] of await previousCancels(tx, resent.filter((e) => e.event.type === 'cancel').map((e) => e.eventId))) {
        cancels.set(eventId, { result: c.result, reason: c.reason ?? undefined })
      }
      const presence = await applyPresence(tx, batch.presence ?? [], this.lifecycle)
      const deadLetters = await storeDeadLetters(tx, batch.deadLetters ?? [])
      const cancelledLate = await cancelLatePresses(tx, alertsOpened(unique(events), raised), this.lifecycle, this.options.cancelWindowMs)
      return { fresh, silent, raised, cancels, tickets, presence, deadLetters, cancelledLate }
    }
    // Most batches are one statement, atomic by itself: no BEGIN and COMMIT round trips, which
    // a press in the alarm lane would wait for.
    const alone = storingAndRaising(batch)
    const outcome = await runAgainOnConflict(() => alone ? storeAndRaise() : this.db.transaction(store))
    if (alone) await this.cancelLateAfterCommit(events, outcome)
    // The presses of an alert a cancel received before them stood down hear that it is.
    const cancelledLate = new Set(outcome.cancelledLate)
    for (const [eventId, alert] of outcome.raised) if (cancelledLate.has(alert.alertId)) outcome.raised.set(eventId, { ...alert, state: 'cancelled' })
    await this.announce(batch, outcome)
    return results(events, outcome)
  }

  /**
   * For a batch committed by itself: each alert a cancel received before its presses stands
   * down (early-cancels.ts) is cancelled in a transaction of its own. Should one fail, its alert
   * stays open, as it would have without this, and is announced so.
   */
  private async cancelLateAfterCommit (events: GatewayEvent[], outcome: BatchOutcome): Promise<void> {
    const failed = (err: unknown, alertIds: string[]) => this.log?.error({ err: (err as Error).message, alertIds }, 'ingest: a cancel that came before its press could not be applied; the alert stays open')
    if (outcome.raised.size === 0) return
    const opened = alertsOpened(unique(events), outcome.raised)
    if (opened.length === 0) return
    let late: LateCancel[]
    try {
      late = await lateCancels(this.db, opened, this.options.cancelWindowMs)
    } catch (err) {
      return failed(err, opened.map((o) => o.alertId))
    }
    for (const one of late) {
      try {
        if (await runAgainOnConflict(() => this.db.transaction((tx) => cancelLate(tx, one, this.lifecycle)))) outcome.cancelledLate.push(one.alertId)
      } catch (err) {
        failed(err, [one.alertId])
      }
    }
  }

  /**
   * Counts the batch's gateway times far ahead of the server's clock (what the server derives
   * from them is dated by its own: gateway-clock.ts), and logs them once a minute per gateway.
   */
  private sayWhenAhead (batch: IngestBatch, clock: ClockOffset, nowMs = Date.now()): void {
    const events = batch.events.filter((e) => aheadOfUs(e.receivedAt, nowMs))
    const presence = (batch.presence ?? []).filter((c) => aheadOfUs(onOurClock(c.at, clock), nowMs))
    if (events.length === 0 && presence.length === 0) return
    for (const e of events) this.timesAhead.inc({ gateway: e.gatewayId, kind: 'event' })
    for (const c of presence) this.timesAhead.inc({ gateway: c.gatewayId, kind: 'presence' })
    const gatewayId = events[0]?.gatewayId ?? presence[0]!.gatewayId
    if (nowMs - (this.aheadLoggedAt.get(gatewayId) ?? -Infinity) < 60_000) return
    this.aheadLoggedAt.set(gatewayId, nowMs)
    const aheadMs = Math.max(...events.map((e) => e.receivedAt), ...presence.map((c) => onOurClock(c.at, clock))) - nowMs
    this.log?.warn({ gatewayId, events: events.length, presence: presence.length, aheadMs, clockOffsetMs: clock },
      'ingest: a gateway dated events or presence changes far ahead of the server\'s clock (its clock is wrong); stored as stamped, but last seen times, presence and reports dated by the server\'s clock')
  }

  /** After commit: the live stream, the downlink long-poll, the counters. */
  private async announce (batch: IngestBatch, o: BatchOutcome): Promise<void> {
    for (const alert of [...o.raised.values(), ...o.presence.raised]) {
      if (alert.created) this.metrics.alertsOpened.inc({ kind: alert.kind })
      this.bus.emit('alert', { alertId: alert.alertId, deviceId: alert.deviceId, state: alert.state, kind: alert.kind })
    }
    let downlink = false
    for (const [eventId, c] of o.cancels) {
      if (!o.fresh.has(eventId)) continue
      this.metrics.cancels.inc({ result: c.result })
      if (c.result === 'cancelled' && c.alert) {
        this.metrics.alertTransitions.inc({ state: 'cancelled' })
        this.bus.emit('alert', { alertId: c.alert.id, deviceId: c.alert.device_id, state: 'cancelled', kind: c.alert.kind })
        downlink = true
      }
    }
    for (const alert of o.presence.resolved) {
      this.metrics.alertTransitions.inc({ state: 'resolved' })
      this.bus.emit('alert', { alertId: alert.id, deviceId: alert.device_id, state: 'resolved', kind: alert.kind })
    }
    for (const change of o.presence.devices) {
      this.metrics.presenceChanges.inc({ state: change.change })
      this.bus.emit('device', change)
    }
    const filed = unique(batch.events).filter((e) => o.fresh.has(e.eventId) && o.tickets.has(e.eventId))
    this.metrics.reportsFiled.inc(filed.length)
    for (const e of filed) this.bus.emit('report', { reportId: o.tickets.get(e.eventId)!, deviceId: e.deviceId, state: 'open' })
    if (o.deadLetters > 0) this.metrics.deadLetters.inc({ gateway: batch.deadLetters?.[0]?.gatewayId ?? 'unknown' }, o.deadLetters)
    // Opened and cancelled at once: the alert events above said `cancelled` already.
    if (o.cancelledLate.length > 0) this.metrics.alertTransitions.inc({ state: 'cancelled' }, o.cancelledLate.length)
    if (downlink || o.cancelledLate.length > 0) await this.lifecycle.notifyDownlink()
  }
}

/** One result per event, in batch order; a repeat of an id inside the batch is a duplicate. */
function results (events: GatewayEvent[], o: BatchOutcome): IngestResult[] {
  const reported = new Set<string>()
  return events.map((e) => {
    const firstTime = o.fresh.has(e.eventId) && !reported.has(e.eventId)
    reported.add(e.eventId)
    const alert = o.raised.get(e.eventId)
    const cancel = o.cancels.get(e.eventId)
    const ticketId = o.tickets.get(e.eventId)
    const result: IngestResult = { eventId: e.eventId, status: firstTime ? 'stored' : 'duplicate' }
    if (alert) Object.assign(result, { alertId: alert.alertId, alertState: alert.state })
    if (cancel?.result === 'cancelled') Object.assign(result, { alertId: cancel.alert?.id, alertState: 'cancelled' })
    else if (cancel) Object.assign(result, { ackState: 'rejected', reason: cancel.reason })
    if (ticketId) result.ticketId = ticketId
    if (o.silent.has(e.deviceId)) result.silent = true
    return result
  })
}

/**
 * Events that only need storing and raising alerts (none cancels or files a report), and no
 * presence changes or dead letters: `storeEvents` is all the batch does.
 */
function storingAndRaising (batch: IngestBatch): boolean {
  return !batch.presence?.length && !batch.deadLetters?.length &&
    batch.events.every((e) => e.event.type !== 'cancel' && e.event.type !== 'report')
}

/**
 * The alert an event raises (a press, a tamper, …), if any, at the gateway's receive time on
 * the server's clock (by the measured offset, when its gateway said when it sent the batch): the
 * person waited from then, whatever held the event on its way, while a gateway's wrong clock
 * changes nothing. Never later than now: a gateway whose clock runs fast, and did not say,
 * would otherwise put the alert in the future and hold back its escalation by as much (one
 * running slow only escalates early, the safe side). The event itself is stored as the
 * gateway stamped it.
 */
function causeOf (e: GatewayEvent, clock?: ClockOffset): AlertCause | undefined {
  const kind = ALERT_KIND_OF_EVENT[e.event.type]
  return kind && {
    deviceId: e.deviceId, kind, atMs: Math.min(onOurClock(e.receivedAt, clock), Date.now()), receivedAtMs: e.receivedAt,
    seq: e.event.seq, ...(e.event.boot === undefined ? {} : { boot: e.event.boot }), eventId: e.eventId, actor: `device:${e.deviceId}`
  }
}

/** The first of each event id, in batch order (a batch may repeat an event the device resent). */
function unique (events: GatewayEvent[]): GatewayEvent[] {
  const seen = new Set<string>()
  return events.filter((e) => !seen.has(e.eventId) && seen.add(e.eventId))
}

/**
 * Cancels and presence changes take their alerts one at a time, in the batch's order; the
 * escalator takes the due panic alerts in device order without their devices. Locking the
 * batch's active alerts first, in device order, keeps the two from holding each other's next.
 */
async function lockActiveAlerts (tx: Queryable, deviceIds: string[]): Promise<void> {
  await tx.query(`SELECT 1 FROM alerts WHERE device_id = ANY($1::text[]) AND state IN ('open', 'acknowledged', 'dispatched')
    ORDER BY device_id, kind FOR UPDATE`, [[...new Set(deviceIds)]])
}

/**
 * A gateway sends alarms and routine events in parallel requests that lock the same devices.
 * Each batch locks all the devices it writes in its first statement, in id order (storeEvents),
 * and an alert only while it holds the alert's device, so batches wait for each other instead
 * of deadlocking; alerts are taken in device order, as the escalator takes them. Should
 * PostgreSQL still abort one (deadlock, 40P01) or refuse it (serialization, 40001), the work
 * touches only the database, so it is run again here rather than answered 500 and resent by
 * the gateway a moment later.
 */
async function runAgainOnConflict<T> (run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (attempt >= attempts || (code !== '40P01' && code !== '40001')) throw err
    }
  }
}
