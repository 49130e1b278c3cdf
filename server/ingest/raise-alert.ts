/** Opening alerts from device events and presence, with coalescing. */
import { randomUUID } from 'node:crypto'
import type { Queryable } from '../db/database.js'
import type { AlertKind, AlertState } from '../alerts/model.js'
import { recordTransition } from '../alerts/transitions.js'

export interface RaisedAlert {
  alertId: string
  deviceId: string
  kind: AlertKind
  state: AlertState
  created: boolean
}

export interface AlertCause {
  deviceId: string
  kind: AlertKind
  /** When it happened (gateway receive time), epoch ms. */
  atMs: number
  seq?: number
  eventId?: string
  /** Who raised it, for the audit trail: `device:{id}` or `gateway:{id}`. */
  actor: string
}

/**
 * Opens an alert of `kind` for the device, or joins the one still active (coalescing: press
 * count and last press time). Null when the device is not registered (removed after the gateway
 * accepted the event): the event stays stored; throwing would fail the batch and make the
 * gateway resend it forever.
 */
export async function raiseAlert (tx: Queryable, cause: AlertCause): Promise<RaisedAlert | null> {
  const rows = await tx.query<{ id: string, state: AlertState, created: boolean }>(`
    INSERT INTO alerts (id, device_id, kind, state, zone, test, opened_at, last_press_at, last_seq, opened_by_event)
    SELECT $1, d.id, $2, 'open', d.zone, false, to_timestamp($3 / 1000.0), to_timestamp($3 / 1000.0), $4, $5
    FROM devices d WHERE d.id = $6
    ON CONFLICT (device_id, kind) WHERE state IN ('open', 'acknowledged', 'dispatched')
    DO UPDATE SET press_count = alerts.press_count + 1,
                  last_press_at = GREATEST(alerts.last_press_at, EXCLUDED.last_press_at),
                  last_seq = COALESCE(EXCLUDED.last_seq, alerts.last_seq),
                  updated_at = now()
    RETURNING id, state, (xmax = 0) AS created`,
  [randomUUID(), cause.kind, cause.atMs, cause.seq ?? null, cause.eventId ?? null, cause.deviceId])
  const row = rows[0]
  if (!row) return null
  if (row.created) {
    await recordTransition(tx, { alertId: row.id, from: null, to: 'open', actor: cause.actor, atMs: cause.atMs })
  }
  return { alertId: row.id, deviceId: cause.deviceId, kind: cause.kind, state: row.state, created: row.created }
}
