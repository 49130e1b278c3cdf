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
  const [raised] = await raiseAlerts(tx, [cause])
  return raised ?? null
}

/**
 * `raiseAlert` for the causes of one batch, in one statement: causes of the same device and
 * kind are one row (their count added to the alert's presses), so a batch holding a hundred
 * presses costs one round trip to the database rather than a hundred, which at load is what a
 * press waits for.
 * The result is per cause, in order; `created` is true for the first cause of a new alert only.
 */
export async function raiseAlerts (tx: Queryable, causes: AlertCause[]): Promise<Array<RaisedAlert | null>> {
  if (causes.length === 0) return []
  interface Group { id: string, first: AlertCause, last: AlertCause, count: number }
  const groups = new Map<string, Group>()
  const groupOf = causes.map((cause) => {
    const key = `${cause.deviceId}\u0000${cause.kind}`
    let group = groups.get(key)
    if (!group) groups.set(key, group = { id: randomUUID(), first: cause, last: cause, count: 0 })
    group.count++
    if (cause.atMs >= group.last.atMs) group.last = cause
    return group
  })
  const rows = await tx.query<{ id: string, device_id: string, kind: AlertKind, state: AlertState, created: boolean }>(`
    INSERT INTO alerts (id, device_id, kind, state, zone, test, opened_at, last_press_at, last_seq, opened_by_event, press_count)
    SELECT g.id, d.id, g.kind, 'open', d.zone, false, to_timestamp(g.first_ms / 1000.0), to_timestamp(g.last_ms / 1000.0), g.last_seq, g.event_id, g.count
    FROM jsonb_to_recordset($1::jsonb) AS g(id text, device_id text, kind text, first_ms float8, last_ms float8, last_seq bigint, event_id text, count integer)
    JOIN devices d ON d.id = g.device_id
    ON CONFLICT (device_id, kind) WHERE state IN ('open', 'acknowledged', 'dispatched')
    DO UPDATE SET press_count = alerts.press_count + EXCLUDED.press_count,
                  last_press_at = GREATEST(alerts.last_press_at, EXCLUDED.last_press_at),
                  last_seq = COALESCE(EXCLUDED.last_seq, alerts.last_seq),
                  updated_at = now()
    RETURNING id, device_id, kind, state, (xmax = 0) AS created`,
  [JSON.stringify([...groups.values()].map((g) => ({
    id: g.id, device_id: g.first.deviceId, kind: g.first.kind, first_ms: g.first.atMs, last_ms: g.last.atMs,
    last_seq: g.last.seq ?? null, event_id: g.first.eventId ?? null, count: g.count
  })))])
  const alerts = new Map(rows.map((r) => [`${r.device_id}\u0000${r.kind}`, r]))
  for (const g of groups.values()) {
    const row = alerts.get(`${g.first.deviceId}\u0000${g.first.kind}`)
    if (row?.created) await recordTransition(tx, { alertId: row.id, from: null, to: 'open', actor: g.first.actor, atMs: g.first.atMs })
  }
  return causes.map((cause, i) => {
    const row = alerts.get(`${cause.deviceId}\u0000${cause.kind}`)
    if (!row) return null
    return { alertId: row.id, deviceId: cause.deviceId, kind: cause.kind, state: row.state, created: row.created && groupOf[i]!.first === cause }
  })
}
