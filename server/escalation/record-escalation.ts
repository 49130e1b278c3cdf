/**
 * An escalation's row in the audit trail: a transition open → open by `system:escalation`, with
 * the level it reached in the `level` column (migration 14). One pass can jump several levels
 * (the escalator catching up after a restart), so readers count the levels reached as the level
 * minus the alert's previous one; the note says the same for people, but is no format to parse.
 * Written like recordTransition (alerts/transitions.ts): the alert's snapshot after the change,
 * so call it after the alert row was updated, in the same transaction.
 */
import type { Queryable } from '../db/database.js'
import { alertSnapshot, TRANSITION_COLUMNS } from '../alerts/transitions.js'

export interface EscalationRecord {
  alertId: string
  level: number
  /** When, epoch ms (the escalator's clock). */
  atMs: number
  note: string
}

export async function recordEscalation (tx: Queryable, e: EscalationRecord): Promise<void> {
  await tx.query(`
    INSERT INTO alert_transitions (${TRANSITION_COLUMNS}, level)
    SELECT a.id, 'open', 'open', to_timestamp($2::float8 / 1000.0), 'system:escalation', $3, ${alertSnapshot('a')}, $4
    FROM alerts a WHERE a.id = $1`,
  [e.alertId, e.atMs, e.note, e.level])
}
