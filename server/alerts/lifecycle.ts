/**
 * Alert state changes: operator actions, device cancels, a device coming back online. Each one
 * is a guarded state change, an audit-trail row, and (for alerts a device raised) a downlink
 * ack, all in one transaction: the person who pressed hears "acknowledged" exactly when the
 * database says so.
 */
import type { Database, Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import type { ServerMetrics } from '../metrics.js'
import { topics } from '../../protocol/index.js'
import { conflict, HttpError, notFound } from '../plugins/errors.js'
import type { FastifyBaseLogger } from 'fastify'
import { deviceAck } from './device-ack.js'
import { recordTransition } from './transitions.js'
import { ACTIONS, alertVersion, DEVICE_FACING_KINDS, type AlertKind, type AlertState, type OperatorAction, type Outcome } from './model.js'

export interface ActionInput {
  actor: string
  note?: string
  outcome?: Outcome
  /** The device event this change answers (a cancel): its seq goes into the device's ack. */
  seq?: number
  /**
   * The alert's `version` as the operator saw it (`AlertView.version`), if they said: a resolve
   * of an alert that changed since is refused (see `act`).
   */
  expectedVersion?: number
}

const TIME_COLUMN: Partial<Record<AlertState, string>> = {
  acknowledged: 'acknowledged_at',
  dispatched: 'dispatched_at',
  resolved: 'resolved_at',
  cancelled: 'cancelled_at'
}

export interface LockedAlert {
  id: string
  device_id: string
  kind: AlertKind
  state: AlertState
  last_seq: number | null
  opened_at: Date
  silent: boolean
}

const LOCKED_ALERT_COLUMNS = 'a.id, a.device_id, a.kind, a.state, a.last_seq, a.opened_at, COALESCE(d.silent, false) AS silent'
const LOCKED_ALERT_FROM = 'FROM alerts a LEFT JOIN devices d ON d.id = a.device_id'

/** Selects alerts with what a state change needs; append a WHERE and lock with `FOR UPDATE OF a`. */
export const SELECT_LOCKED_ALERT = `
  SELECT ${LOCKED_ALERT_COLUMNS}
  ${LOCKED_ALERT_FROM}`

/** An alert an operator acts on: with what its version is made of. */
interface ActedAlert extends LockedAlert {
  press_count: number
  escalation_level: number
}

export class AlertLifecycle {
  constructor (
    private readonly db: Database,
    private readonly downlink: DownlinkQueue,
    private readonly bus: Bus,
    private readonly metrics?: ServerMetrics,
    private readonly log?: Pick<FastifyBaseLogger, 'warn'>
  ) {}

  async act (alertId: string, action: OperatorAction, input: ActionInput): Promise<void> {
    const { from, to } = ACTIONS[action]
    const alert = await this.db.transaction(async (tx) => {
      // Locked before it is looked at: a press joining waits for this transaction, or this one
      // for the press's, so what the version check reads is what the transition changes.
      const rows = await tx.query<ActedAlert>(
        `SELECT ${LOCKED_ALERT_COLUMNS}, a.press_count, a.escalation_level ${LOCKED_ALERT_FROM} WHERE a.id = $1 FOR UPDATE OF a`, [alertId])
      const current = rows[0]
      if (!current) throw notFound(`alert ${alertId}`)
      if (!from.includes(current.state)) {
        throw conflict(`cannot ${action} an alert that is ${current.state}`)
      }
      if (action === 'resolve') refuseIfChanged(current, input.expectedVersion)
      await this.transition(tx, current, to, input)
      return current
    })
    await this.afterCommit(alert, to)
  }

  /** Moves a locked alert to `to`, records who and why, and queues the device's ack. */
  async transition (tx: Queryable, alert: LockedAlert, to: AlertState, input: ActionInput): Promise<void> {
    // Only a resolution has an outcome (the KPIs read "has an outcome" as "an operator resolved it").
    if (input.outcome !== undefined && to !== 'resolved') throw new HttpError(400, 'VALIDATION', `an outcome is given only when resolving, not to ${to}`)
    const column = TIME_COLUMN[to]
    await tx.query(
      `UPDATE alerts SET state = $2, ${column ? `${column} = now(),` : ''} outcome = COALESCE($3, outcome), updated_at = now()
       WHERE id = $1`, [alert.id, to, input.outcome ?? null])
    await recordTransition(tx, { alertId: alert.id, from: alert.state, to, actor: input.actor, note: input.note })
    // Only an active alert's presses are ever ordered against a cancel (ingest/cancel.ts).
    if (to === 'resolved' || to === 'cancelled') await tx.query('DELETE FROM alert_presses WHERE alert_id = $1', [alert.id])
    if (DEVICE_FACING_KINDS.includes(alert.kind)) {
      const ack = deviceAck({ seq: input.seq ?? alert.last_seq ?? undefined, state: to === 'open' ? 'received' : to, alertId: alert.id }, alert.silent)
      await this.downlink.enqueue(tx, [{ topic: topics.ack(alert.device_id), payload: ack }])
    }
  }

  async afterCommit (alert: Pick<LockedAlert, 'id' | 'device_id' | 'kind'>, state: AlertState): Promise<void> {
    this.metrics?.alertTransitions.inc({ state })
    this.bus.emit('alert', { alertId: alert.id, deviceId: alert.device_id, state, kind: alert.kind })
    // The change is committed: a failed wake-up must not answer 500 (the operator's retry would
    // hear "cannot acknowledge an alert that is acknowledged"). Gateways look again within their
    // long poll's wait anyway.
    if (DEVICE_FACING_KINDS.includes(alert.kind)) await this.downlink.notify().catch((err: Error) => this.log?.warn({ err: err.message, alertId: alert.id }, 'downlink wake-up failed after a committed change; gateways see it at their next poll'))
  }

  /** Wakes the gateways' downlink long-poll after a commit that queued acks. */
  async notifyDownlink (): Promise<void> {
    await this.downlink.notify()
  }
}

/**
 * A resolve closes the case the operator saw, or nothing: a press that joined since (the person
 * pressed again: the emergency may be real after all) would be closed unseen, the device told
 * "resolved" and its light put out. The version is one number made of presses, escalation
 * level and state, so any change since refuses: another desk's acknowledgement or dispatch
 * (a patrol on its way) and an escalation are worth a look before closing too, and a second
 * click costs an operator less than an unseen press costs the person.
 * Acknowledging and dispatching go through whatever joined: they answer the person sooner.
 */
function refuseIfChanged (alert: ActedAlert, expectedVersion: number | undefined): void {
  if (expectedVersion === undefined) return
  const version = alertVersion({ state: alert.state, pressCount: alert.press_count, escalationLevel: alert.escalation_level })
  if (version === expectedVersion) return
  const presses = `${alert.press_count} press${alert.press_count === 1 ? '' : 'es'}`
  throw new HttpError(409, 'ALERT_CHANGED',
    `alert ${alert.id} changed since version ${expectedVersion} (now ${version}: ${presses}, ${alert.state}, escalation level ${alert.escalation_level}); ` +
    'nothing was changed: read it again before resolving')
}
