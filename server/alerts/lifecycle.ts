/**
 * Operator actions on an alert. Each one is a guarded state change, an audit-trail row, and
 * (for alerts a device raised) a downlink ack, all in one transaction: the person who pressed
 * hears "acknowledged" exactly when the database says so.
 */
import type { Database, Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import { topics, type Ack } from '../../protocol/index.js'
import { conflict, notFound } from '../plugins/errors.js'
import { ACTIONS, DEVICE_FACING_KINDS, type AlertKind, type AlertState, type OperatorAction, type Outcome } from './model.js'

export interface ActionInput {
  actor: string
  note?: string
  outcome?: Outcome
}

const TIME_COLUMN: Partial<Record<AlertState, string>> = {
  acknowledged: 'acknowledged_at',
  dispatched: 'dispatched_at',
  resolved: 'resolved_at',
  cancelled: 'cancelled_at'
}

interface LockedAlert {
  id: string
  device_id: string
  kind: AlertKind
  state: AlertState
  last_seq: number | null
}

export class AlertLifecycle {
  constructor (private readonly db: Database, private readonly downlink: DownlinkQueue, private readonly bus: Bus) {}

  async act (alertId: string, action: OperatorAction, input: ActionInput): Promise<void> {
    const { from, to } = ACTIONS[action]
    const alert = await this.db.transaction(async (tx) => {
      const rows = await tx.query<LockedAlert>(
        'SELECT id, device_id, kind, state, last_seq FROM alerts WHERE id = $1 FOR UPDATE', [alertId])
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
    const column = TIME_COLUMN[to]
    await tx.query(
      `UPDATE alerts SET state = $2, ${column ? `${column} = now(),` : ''} outcome = COALESCE($3, outcome), updated_at = now()
       WHERE id = $1`, [alert.id, to, input.outcome ?? null])
    await tx.query(
      'INSERT INTO alert_transitions (alert_id, from_state, to_state, actor, note) VALUES ($1, $2, $3, $4, $5)',
      [alert.id, alert.state, to, input.actor, input.note ?? null])
    if (DEVICE_FACING_KINDS.includes(alert.kind)) {
      const ack: Ack = { seq: alert.last_seq ?? undefined, state: to === 'open' ? 'received' : to, alertId: alert.id }
      await this.downlink.enqueue(tx, [{ topic: topics.ack(alert.device_id), payload: ack }])
    }
  }

  async afterCommit (alert: LockedAlert, state: AlertState): Promise<void> {
    this.bus.emit('alert', { alertId: alert.id, deviceId: alert.device_id, state, kind: alert.kind })
    if (DEVICE_FACING_KINDS.includes(alert.kind)) await this.downlink.notify()
  }
}
