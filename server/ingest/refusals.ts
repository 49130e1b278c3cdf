/**
 * What the database refuses for good (a value out of a column's range, text it cannot hold: a
 * bug's data, which a resend would never fix). The batch is split and stored part by part, so
 * that one event never holds up the alarms beside it: the gateway would otherwise resend the
 * whole batch forever. What is left alone and still refused is kept as a dead letter and
 * answered `refused` (the device hears `rejected`); an alarm is stored bare first.
 * A batch whose statement is cancelled at the statement timeout is split the same way, part by
 * part, but never dead-lettered (statement-timeouts.ts): both in one recursion, so a part is
 * never stored again after a failure of the other kind beside it.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/database.js'
import { topics, type DeadLetter, type GatewayEvent, type IngestBatch, type IngestResult, type PresenceChange } from '../../protocol/index.js'
import { ALERT_KIND_OF_EVENT } from '../alerts/model.js'
import type { AlertLifecycle } from '../alerts/lifecycle.js'
import type { ServerMetrics } from '../metrics.js'
import { applyPresence, type PresenceEffects } from './presence.js'
import { base64Of, eventLetter, storableLetter, storeDeadLetters } from './dead-letters.js'
import { itemsIn, partsOf } from './batch-parts.js'
import { cancelledStatement, StatementTimeouts } from './statement-timeouts.js'

/** Stores a batch whole (one statement or transaction), or throws what the database said. */
export type StoreWhole = (batch: IngestBatch) => Promise<IngestResult[]>

export class RefusalSplitter {
  constructor (
    private readonly db: Database,
    private readonly lifecycle: AlertLifecycle,
    private readonly metrics: ServerMetrics,
    /** After commit: the live stream and the counters, for a presence change applied here. */
    private readonly announce: (effects: PresenceEffects) => Promise<void>,
    private readonly log?: FastifyBaseLogger
  ) {}

  /**
   * Stores `batch` with `storeWhole`; should the database refuse it for good, or cancel its
   * statement at the statement timeout (statement-timeouts.ts), part by part. `timeouts`: those
   * the request met so far (parts of one request share them).
   */
  async store (batch: IngestBatch, storeWhole: StoreWhole, timeouts = new StatementTimeouts()): Promise<IngestResult[]> {
    const untried = timeouts.splitUntried(batch)
    if (untried) return this.inOrder(untried, storeWhole, timeouts)
    try {
      return await storeWhole(batch)
    } catch (err) {
      if (refusedForGood(err)) return this.inParts(batch, err as Error, storeWhole, timeouts)
      const parts = timeouts.partsAfter(err, batch)
      if (cancelledStatement(err)) this.metrics.ingestStatementsCancelled.inc({ then: parts ? 'split' : 'failed' })
      if (!parts) throw err
      this.log?.warn({ err: (err as Error).message, items: itemsIn(batch), parts: parts.map(itemsIn), timeouts: timeouts.count },
        'ingest: a batch\'s statement was cancelled (statement timeout); stored again in parts')
      return this.inOrder(parts, storeWhole, timeouts)
    }
  }

  private async inOrder (parts: IngestBatch[], storeWhole: StoreWhole, timeouts: StatementTimeouts): Promise<IngestResult[]> {
    const results: IngestResult[] = []
    for (const part of parts) results.push(...await this.store(part, storeWhole, timeouts))
    return results
  }

  /** Halves, in order, until what is refused stands alone. */
  private async inParts (batch: IngestBatch, err: Error, storeWhole: StoreWhole, timeouts: StatementTimeouts): Promise<IngestResult[]> {
    const parts = partsOf(batch)
    if (parts) return this.inOrder(parts, storeWhole, timeouts)
    const { events, presence = [], deadLetters = [] } = batch
    if (events.length === 1) return [await this.storeAlone(events[0]!, err, storeWhole, timeouts)]
    // One presence change or dead letter no database will take. A presence change is kept as a
    // dead letter (at its own time, or the last a timestamp holds), so the operators see it,
    // and applied at the server's time. A refused dead letter can only be logged.
    this.metrics.ingestRefused.inc({ kind: presence.length > 0 ? 'presence' : 'dead_letter' })
    const [change] = presence
    if (change) {
      await this.keepAndApply(change, {
        deviceId: change.deviceId, gatewayId: change.gatewayId, topic: topics.status(change.deviceId), receivedAt: change.at,
        reason: `presence change could not be stored: ${err.message}`, payload: base64Of(change)
      })
    } else {
      this.log?.error({ err: err.message, item: deadLetters[0] }, 'ingest: a dead letter was refused by the database and dropped')
    }
    return []
  }

  /**
   * An event the database refuses for good, alone. An alarm is stored bare (what raises its
   * alert: device, seq, type, when), its telemetry and extra fields kept as a dead letter: a
   * press must never be lost to a bad battery reading or a bug in what rides along. What no form
   * can store is refused.
   */
  private async storeAlone (e: GatewayEvent, err: Error, storeWhole: StoreWhole, timeouts: StatementTimeouts): Promise<IngestResult> {
    const bare = bareAlarm(e)
    if (!bare) return this.refuse(e, err)
    const [result] = await this.store({ events: [bare] }, storeWhole, timeouts)
    if (result?.status === 'stored') await this.keepDeadLetter(eventLetter(e, `stored without its telemetry and extra fields, which could not be stored: ${err.message}`))
    return result!
  }

  /**
   * A presence change the database refused (its time, say) is kept as a dead letter and applied
   * all the same, at the server's time: a device gone offline unreported is what supervision
   * exists to prevent, and one back online must not keep its alert. Both in one transaction,
   * and only when the letter is new: the same change resent is applied once.
   */
  private async keepAndApply (change: PresenceChange, letter: DeadLetter): Promise<void> {
    try {
      const { kept, effects } = await this.db.transaction(async (tx) => {
        const kept = await storeDeadLetters(tx, [storableLetter(letter)])
        // Kept before: this is the same change resent, applied the first time.
        if (kept === 0) return { kept, effects: undefined }
        // After the device's last change, even one its gateway dated ahead of our clock (as
        // any change, it is applied only when newer: see applyPresence).
        const [device] = await tx.query<{ presence_at: Date | null }>('SELECT presence_at FROM devices WHERE id = $1', [change.deviceId])
        const at = Math.max(Date.now(), (device?.presence_at?.getTime() ?? 0) + 1)
        return { kept, effects: await applyPresence(tx, [{ ...change, at }], this.lifecycle) }
      })
      this.metrics.deadLetters.inc({ gateway: letter.gatewayId }, kept)
      if (effects) await this.announce(effects)
    } catch (failed) {
      if (!refusedForGood(failed)) throw failed
      this.log?.error({ err: (failed as Error).message, deviceId: change.deviceId }, 'ingest: a refused presence change could not be applied at the server\'s time')
      await this.keepDeadLetter(letter)
    }
  }

  /** Kept as a dead letter for the operators, never resent; the device hears `rejected`. */
  private async refuse (e: GatewayEvent, err: Error): Promise<IngestResult> {
    // The same event id twice in one batch, the other copy stored: this one is its duplicate.
    if ((await this.db.query('SELECT 1 FROM event_ids WHERE event_id = $1', [e.eventId])).length > 0) return { eventId: e.eventId, status: 'duplicate' }
    await this.keepDeadLetter(eventLetter(e, `could not be stored: ${err.message}`))
    this.log?.error({ err: err.message, eventId: e.eventId }, 'ingest: event refused by the database; kept as a dead letter')
    // The device is told why in its own terms; the database's words are for the operators.
    return { eventId: e.eventId, status: 'refused', ackState: 'rejected', reason: 'could not be stored; kept for the operators' }
  }

  /**
   * Events refused before anything of their batch was stored (an id that is not their own:
   * event-ids.ts), each kept as a dead letter with its reason and answered `refused`: the
   * device hears `rejected`. One statement for them all; should the database refuse it, one
   * letter at a time.
   */
  async refuseUnstored (refusals: Array<{ e: GatewayEvent, reason: string }>): Promise<IngestResult[]> {
    if (refusals.length === 0) return []
    const letters = refusals.map(({ e, reason }) => storableLetter(eventLetter(e, reason)))
    try {
      this.metrics.deadLetters.inc({ gateway: letters[0]!.gatewayId }, await storeDeadLetters(this.db, letters))
    } catch (err) {
      if (!refusedForGood(err)) throw err
      for (const letter of letters) await this.keepDeadLetter(letter)
    }
    return refusals.map(({ e }) => ({ eventId: e.eventId, status: 'refused', ackState: 'rejected', reason: 'event id is not the one of its device, boot and seq; kept for the operators' }))
  }

  private async keepDeadLetter (letter: DeadLetter): Promise<void> {
    try {
      this.metrics.deadLetters.inc({ gateway: letter.gatewayId }, await storeDeadLetters(this.db, [storableLetter(letter)]))
    } catch (failed) {
      // Even the dead letter holds what the database refuses: logged.
      if (!refusedForGood(failed)) throw failed
      this.log?.error({ err: (failed as Error).message, letter: { ...letter, payload: undefined } }, 'ingest: dead letter of a refused event could not be stored')
    }
  }
}

/**
 * An alarm (an event that raises an alert) with only what raising it needs, or undefined when
 * it is not an alarm or has nothing more: same id, so it is still stored once.
 */
function bareAlarm (e: GatewayEvent): GatewayEvent | undefined {
  if (!ALERT_KIND_OF_EVENT[e.event.type]) return undefined
  const { seq, boot, type } = e.event
  const event = { seq, type, ...(boot === undefined ? {} : { boot }) }
  if (Object.keys(e.event).length === Object.keys(event).length && e.skewMs === undefined) return undefined
  return { eventId: e.eventId, deviceId: e.deviceId, gatewayId: e.gatewayId, receivedAt: e.receivedAt, skewed: e.skewed, event }
}

/**
 * The database refused the data itself (SQLSTATE class 22, data exception; 23, a constraint):
 * sending it again changes nothing. Anything else (a lost connection, a restart) may pass later,
 * and so may a unique violation (23505): every insert here says what to do on conflict, so one
 * means two requests raced with the same rows, and the resend finds them stored. (Events that
 * cannot even be written out for the database are answered so too: see storeEvents.)
 */
export function refusedForGood (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && (code.startsWith('22') || (code.startsWith('23') && code !== '23505'))
}
