/**
 * Writing the audit trail. Every row carries a snapshot of its alert after the change (zone,
 * kind, test flag, outcome, opened and first-response times), so dashboards aggregate the
 * trail directly (it is the hypertable behind the alert continuous aggregates).
 * Call it after the alert row itself was updated, in the same transaction.
 */
import type { Queryable } from '../db/database.js'
import type { AlertState } from './model.js'

export interface TransitionRecord {
  alertId: string
  from: AlertState | null
  to: AlertState
  actor: string
  note?: string | null
  /** When it happened, epoch ms; default: the transaction's time. */
  atMs?: number
}

export async function recordTransition (tx: Queryable, t: TransitionRecord): Promise<void> {
  await tx.query(`
    INSERT INTO alert_transitions (${TRANSITION_COLUMNS})
    SELECT a.id, $2, $3, COALESCE(to_timestamp($4::float8 / 1000.0), now()), $5, $6, ${alertSnapshot('a')}
    FROM alerts a WHERE a.id = $1`,
  [t.alertId, t.from, t.to, t.atMs ?? null, t.actor, t.note ?? null])
}

/** A transition row's columns: the change (alert, from, to, at, actor, note), then the alert's snapshot. */
export const TRANSITION_COLUMNS = 'alert_id, from_state, to_state, at, actor, note, device_id, zone, kind, test, outcome, opened_at, first_response_at'

/**
 * The snapshot columns' values, read from a row `alias` that has the alerts table's columns
 * (the table itself, or an INSERT's RETURNING when the alert is new in the same statement).
 */
export function alertSnapshot (alias: string): string {
  const a = alias
  return `${a}.device_id, ${a}.zone, ${a}.kind, ${a}.test, ${a}.outcome, ${a}.opened_at, COALESCE(${a}.acknowledged_at, ${a}.dispatched_at)`
}
