/** Opening alerts from device events and presence, with coalescing. */
import type { Queryable } from '../db/database.js'
import type { AlertKind, AlertState } from '../alerts/model.js'
import { alertSnapshot, TRANSITION_COLUMNS } from '../alerts/transitions.js'
import { CROSSED_CLOCKS_MS } from './cancel.js'

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
 * (Late causes are placed first: `placeLateCauses`.)
 */
export async function raiseAlerts (tx: Queryable, causes: AlertCause[]): Promise<Array<RaisedAlert | null>> {
  if (causes.length === 0) return []
  const rows = await tx.query<RaisedRow>(`
    WITH causes AS (SELECT * FROM ${causeRecords('$1')}),
    ${RAISE_FROM_CAUSES}
    SELECT alert_id, device_id, kind, state, created FROM raised`, [causesJson(causes)])
  return alertsOfCauses(causes, rows)
}

/**
 * Received too long ago to be news: its device's alert may have been closed in the meantime.
 * (One received less than CROSSED_CLOCKS_MS ago cannot be told apart from a closing in that
 * time anyway: the gateways' clocks are not known better than that.)
 */
function isLate (cause: AlertCause, nowMs: number): boolean {
  return cause.atMs < nowMs - CROSSED_CLOCKS_MS
}

/**
 * Alerts are looked up by their opening time (there is no index by device for closed ones): a
 * late cause is compared with alerts opened at most this long before it. One open longer than
 * that is left out: the cause is raised at its own time, as any.
 */
const LONGEST_ALERT_MS = 24 * 3_600_000

/**
 * The causes, each late one dated before an alert of its device and kind was closed (resolved
 * by an operator, or cancelled on the device) dated at the server's time instead. Its own time
 * cannot say whether it belonged to the incident dealt with, or is a new one whose time is off
 * (a gateway clock set between the press and the sending, a press held in another gateway's
 * outbox): dated back, it would escalate the moment it is stored, or drag back the opening of
 * the new alert it joins, and its response times would count minutes nobody waited. It never
 * joins the closed alert: a new press swallowed into a closed incident is the one mistake an
 * alarm must not make; a second alert an operator closes at a glance is not.
 */
export async function placeLateCauses (q: Queryable, causes: AlertCause[], nowMs = Date.now()): Promise<AlertCause[]> {
  const late = causes.filter((c) => isLate(c, nowMs))
  if (late.length === 0) return causes
  const earliest = Math.min(...late.map((c) => c.atMs))
  const closed = await q.query<{ device_id: string, kind: AlertKind, closed_ms: number }>(`
    SELECT device_id, kind, extract(epoch FROM COALESCE(resolved_at, cancelled_at))::float8 * 1000 AS closed_ms
    FROM alerts
    WHERE state IN ('resolved', 'cancelled') AND device_id = ANY($1::text[])
      AND opened_at >= to_timestamp($2::float8 / 1000.0) AND COALESCE(resolved_at, cancelled_at) > to_timestamp($3::float8 / 1000.0)`,
  [[...new Set(late.map((c) => c.deviceId))], earliest - LONGEST_ALERT_MS, earliest])
  if (closed.length === 0) return causes
  return causes.map((c) => isLate(c, nowMs) && closed.some((a) => a.device_id === c.deviceId && a.kind === c.kind && Number(a.closed_ms) > c.atMs)
    ? { ...c, atMs: nowMs }
    : c)
}

/** The causes as the `$n` parameter that `causeRecords` reads. */
export function causesJson (causes: AlertCause[]): string {
  return JSON.stringify(causes.map((c, i) => ({
    ord: i, device_id: c.deviceId, kind: c.kind, at_ms: c.atMs, seq: c.seq ?? null, boot: c.boot ?? null, event_id: c.eventId ?? null,
    received_ms: c.receivedAtMs ?? null, actor: c.actor, note: c.note ?? null
  })))
}

/** The rows of a causes parameter, for a `causes` CTE (a statement may narrow them first). */
export function causeRecords (param: string): string {
  return `json_to_recordset(${param}::json) AS c(ord integer, device_id text, kind text, at_ms float8, seq bigint, boot text, event_id text, received_ms float8, actor text, note text)`
}

/**
 * CTEs that raise alerts from a CTE named `causes` (the rows of `causeRecords`), ending in
 * `raised` (a `RaisedRow` per alert). Kept as SQL text so a batch of events can store itself
 * and raise its alerts in a single statement: no transaction around it, one round trip.
 * Per device and kind: the alert opens at the earliest cause (an alert it joins opens then too,
 * if that is earlier: a press held on its way, which the person made before the one that
 * opened it), its last press and seq are the latest cause's, and a new alert's first
 * transition says who opened it (the first cause in batch order, which also opens it for the
 * cancel window: `opened_by_event`). Each device event
 * raised into a panic alert of a device that can cancel (it has a PIN) is kept in
 * `alert_presses` while the alert is active, for a cancel to be ordered against (cancel.ts
 * `pressedAfter`).
 */
export const RAISE_FROM_CAUSES = `
    grouped AS (
      SELECT device_id, kind, count(*)::integer AS count,
             min(at_ms) AS first_ms,
             (array_agg(event_id ORDER BY ord))[1] AS first_event,
             (array_agg(actor ORDER BY ord))[1] AS actor,
             (array_agg(note ORDER BY ord))[1] AS note,
             max(at_ms) AS last_ms,
             (array_agg(seq ORDER BY at_ms DESC, ord DESC))[1] AS last_seq
      FROM causes GROUP BY device_id, kind
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
      FROM causes c JOIN raised r USING (device_id, kind) JOIN devices d ON d.id = r.device_id
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
