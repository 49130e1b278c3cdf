/** Opening alerts from device events and presence, with coalescing. */
import type { Queryable } from '../db/database.js'
import type { AlertKind, AlertState } from '../alerts/model.js'
import { alertSnapshot, TRANSITION_COLUMNS } from '../alerts/transitions.js'
import { placedCauses } from './late-causes.js'

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
  /** When it happened (gateway receive time, on the server's clock where measured), epoch ms, never later than now. */
  atMs: number
  seq?: number
  /** The device's boot, for a device event. */
  boot?: string
  eventId?: string
  /** The gateway's receive time as it stamped it (`atMs` is never later than now), epoch ms. */
  receivedAtMs?: number
  /** Who raised it, for the audit trail: `device:{id}`, `gateway:{id}` or `system:…`. */
  actor: string
  /** Why, for the audit trail's first transition (a device's own alarm needs none). */
  note?: string
  /**
   * A late cause (late-causes.ts): the time it is dated at instead, should it fall before a
   * closing of its device's alert of its kind. Epoch ms.
   */
  redateAtMs?: number
}

/** What the raising part of a statement returns: one row per alert opened or joined. */
export interface RaisedRow {
  alert_id: string
  device_id: string
  kind: AlertKind
  state: AlertState
  created: boolean
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
 * `raiseAlert` for the causes of one batch, in one statement (with the audit trail's first
 * transition of each new alert): causes of the same device and kind are one row (their count
 * added to the alert's presses), so a batch holding a hundred presses costs one round trip to
 * the database rather than a hundred, which at load is what a press waits for.
 * The result is per cause, in order; `created` is true for the first cause of a new alert only.
 * Late causes are placed in the same statement (late-causes.ts).
 */
export async function raiseAlerts (tx: Queryable, causes: AlertCause[]): Promise<Array<RaisedAlert | null>> {
  if (causes.length === 0) return []
  const rows = await tx.query<RaisedRow>(`
    WITH causes AS (SELECT * FROM ${causeRecords('$1')}),
    ${raiseFromCauses(causes)}
    SELECT alert_id, device_id, kind, state, created FROM raised`, [causesJson(causes)])
  return alertsOfCauses(causes, rows)
}

/**
 * For a batch stored in a transaction: its causes placed (late-causes.ts) at once, before any
 * of them is raised, in a statement of their own that locks the alerts they are compared with
 * until the transaction ends. Placed as each is raised, a press after a cancel in the same batch
 * would be compared with the closing that cancel made a moment before: the batch itself says
 * which came first (early-cancels.ts orders them), and the press would be dated now. Returned
 * with their times set, and nothing left to place.
 */
export async function placeLateCauses (tx: Queryable, causes: AlertCause[]): Promise<AlertCause[]> {
  if (!causes.some((c) => c.redateAtMs !== undefined)) return causes
  const rows = await tx.query<{ ord: number, at_ms: number }>(`
    WITH causes AS (SELECT * FROM ${causeRecords('$1')}), ${placedCauses(causes)}
    SELECT ord, at_ms FROM placed`, [causesJson(causes)])
  const placed = new Map(rows.map((r) => [Number(r.ord), Number(r.at_ms)]))
  return causes.map(({ redateAtMs: _placedNow, ...c }, i) => ({ ...c, atMs: placed.get(i) ?? c.atMs }))
}

/** The causes as the `$n` parameter that `causeRecords` reads. */
export function causesJson (causes: AlertCause[]): string {
  return JSON.stringify(causes.map((c, i) => ({
    ord: i, device_id: c.deviceId, kind: c.kind, at_ms: c.atMs, seq: c.seq ?? null, boot: c.boot ?? null, event_id: c.eventId ?? null,
    received_ms: c.receivedAtMs ?? null, actor: c.actor, note: c.note ?? null, redate_ms: c.redateAtMs ?? null
  })))
}

/** The rows of a causes parameter, for a `causes` CTE (a statement may narrow them first). */
export function causeRecords (param: string): string {
  return `json_to_recordset(${param}::json) AS c(ord integer, device_id text, kind text, at_ms float8, seq bigint, boot text, event_id text, received_ms float8, actor text, note text, redate_ms float8)`
}

/**
 * CTEs that raise `causes` (what the statement's CTE named `causes` holds: the rows of
 * `causeRecords`), the late ones placed first (`placed`: late-causes.ts), ending in `raised`
 * (a `RaisedRow` per alert). Kept as SQL text so a batch of events can store itself and raise
 * its alerts in a single statement: no transaction around it, one round trip.
 * Per device and kind: the alert opens at the earliest cause (an alert it joins opens then too,
 * if that is earlier: a press held on its way, which the person made before the one that
 * opened it), its last press and seq are the latest cause's, and a new alert's first
 * transition says who opened it (the first cause in batch order, which also opens it for the
 * cancel window: `opened_by_event`). Each device event
 * raised into a panic alert of a device that can cancel (it has a PIN) is kept in
 * `alert_presses` while the alert is active, for a cancel to be ordered against (cancel.ts
 * `pressedAfter`).
 */
export function raiseFromCauses (causes: AlertCause[]): string {
  return `${placedCauses(causes)},${RAISE_FROM_PLACED}`
}

const RAISE_FROM_PLACED = `
    grouped AS (
      SELECT device_id, kind, count(*)::integer AS count,
             min(at_ms) AS first_ms,
             (array_agg(event_id ORDER BY ord))[1] AS first_event,
             (array_agg(actor ORDER BY ord))[1] AS actor,
             (array_agg(note ORDER BY ord))[1] AS note,
             max(at_ms) AS last_ms,
             (array_agg(seq ORDER BY at_ms DESC, ord DESC))[1] AS last_seq
      FROM placed GROUP BY device_id, kind
    ), raised AS (
      INSERT INTO alerts AS a (id, device_id, kind, state, zone, test, opened_at, last_press_at, last_seq, opened_by_event, press_count)
      SELECT gen_random_uuid()::text, d.id, g.kind, 'open', d.zone, false, to_timestamp(g.first_ms / 1000.0),
             to_timestamp(g.last_ms / 1000.0), g.last_seq, g.first_event, g.count
      FROM grouped g JOIN devices d ON d.id = g.device_id
      -- Alerts are taken in device order, as the escalator takes them (see escalator.ts).
      ORDER BY g.device_id, g.kind
      ON CONFLICT (device_id, kind) WHERE state IN ('open', 'acknowledged', 'dispatched')
      DO UPDATE SET press_count = a.press_count + EXCLUDED.press_count,
                    opened_at = LEAST(a.opened_at, EXCLUDED.opened_at),
                    last_press_at = GREATEST(a.last_press_at, EXCLUDED.last_press_at),
                    last_seq = CASE WHEN EXCLUDED.last_press_at >= a.last_press_at THEN COALESCE(EXCLUDED.last_seq, a.last_seq) ELSE a.last_seq END,
                    updated_at = now()
      RETURNING a.id AS alert_id, (a.xmax = 0) AS created, a.*
    ), opened AS (
      -- As recordTransition writes it: the alert's snapshot after the change.
      INSERT INTO alert_transitions (${TRANSITION_COLUMNS})
      SELECT r.alert_id, NULL, 'open', r.opened_at, g.actor, g.note, ${alertSnapshot('r')}
      FROM raised r JOIN grouped g USING (device_id, kind)
      WHERE r.created
    ), pressed AS (
      INSERT INTO alert_presses (alert_id, event_id, boot, seq, received_at)
      SELECT r.alert_id, c.event_id, c.boot, c.seq, to_timestamp(COALESCE(c.received_ms, c.at_ms) / 1000.0)
      FROM placed c JOIN raised r USING (device_id, kind) JOIN devices d ON d.id = r.device_id
      WHERE c.kind = 'panic' AND c.event_id IS NOT NULL AND d.pin_hash IS NOT NULL
      ON CONFLICT DO NOTHING
    )`

/**
 * Each cause's alert, in order, from the rows the statement returned; `created` only for the
 * first cause (in batch order) of a new alert. A cause whose device is not registered has none.
 */
export function alertsOfCauses (causes: AlertCause[], rows: RaisedRow[]): Array<RaisedAlert | null> {
  const alerts = new Map(rows.map((r) => [`${r.device_id}\u0000${r.kind}`, r]))
  const firsts = new Set<string>()
  return causes.map((cause) => {
    const key = `${cause.deviceId}\u0000${cause.kind}`
    const row = alerts.get(key)
    if (!row) return null
    const first = !firsts.has(key)
    firsts.add(key)
    return { alertId: row.alert_id, deviceId: cause.deviceId, kind: cause.kind, state: row.state, created: row.created && first }
  })
}
