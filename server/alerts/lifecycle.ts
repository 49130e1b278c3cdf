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
import { ACTIONS, DEVICE_FACING_KINDS, type AlertKind, type AlertState, type OperatorAction, type Outcome } from './model.js'

export interface ActionInput {
  actor: string
  note?: string
  outcome?: Outcome
  /** The device event this change answers (a cancel): its seq goes into the device's ack. */
  seq?: number
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

/** Selects alerts with what a state change needs; append a WHERE and lock with `FOR UPDATE OF a`. */
export const SELECT_LOCKED_ALERT = `
  SELECT a.id, a.device_id, a.kind, a.state, a.last_seq, a.opened_at, COALESCE(d.silent, false) AS silent
  FROM alerts a LEFT JOIN devices d ON d.id = a.device_id`

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
      const rows = await tx.query<LockedAlert>(`${SELECT_LOCKED_ALERT} WHERE a.id = $1 FOR UPDATE OF a`, [alertId])
      const current = rows[0]
      if (!current) throw notFound(`alert ${alertId}`)
      if (!from.includes(current.state)) {
        throw conflict(`cannot ${action} an alert that is ${current.state}`)
      }
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
