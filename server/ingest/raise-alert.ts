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
  /**
   * When it happened (gateway receive time), epoch ms, never later than now; on the server's
   * clock when `onServerClock`.
   */
  atMs: number
  /**
   * `atMs` is on the server's clock, within CROSSED_CLOCKS_MS: its gateway said when it sent
   * the batch, so its clock was measured (ingest.ts). Only such a time may place a late event in
   * an alert already resolved: from a clock nobody measured, a press made after the resolution
   * may look older by however far that clock is behind.
   */
  onServerClock?: boolean
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
 *
 * A cause received more than CROSSED_CLOCKS_MS ago (held in a gateway's outbox, say) may be
 * older than an operator's resolution of its device's alert: one more look then, and such a
 * cause joins the resolved alert (`resolvedAlertDuring`) or is raised at the server's time
 * (`placedAfterResolution`).
 */
export async function raiseAlerts (tx: Queryable, causes: AlertCause[]): Promise<Array<RaisedAlert | null>> {
  if (causes.length === 0) return []
  const nowMs = Date.now()
  const late = causes.filter((c) => isLate(c, nowMs))
  const resolved = late.length === 0 ? [] : await resolvedSince(tx, late)
  if (resolved.length === 0) return raiseNow(tx, causes)
  const homes = causes.map((c) => isLate(c, nowMs) ? resolvedAlertDuring(c, resolved) : undefined)
  const raised = await raiseNow(tx, causes.filter((_, i) => !homes[i]).map((c) => placedAfterResolution(c, resolved, nowMs)))
  const joined = await joinResolved(tx, causes.filter((_, i) => homes[i]), homes.filter((h): h is ResolvedAlert => h !== undefined))
  let next = 0
  return causes.map((_, i) => homes[i] ? joined.get(homes[i].id) ?? null : raised[next++] ?? null)
}

/** The one statement that opens or joins the causes' active alerts. */
async function raiseNow (tx: Queryable, causes: AlertCause[]): Promise<Array<RaisedAlert | null>> {
  if (causes.length === 0) return []
  const rows = await tx.query<RaisedRow>(`
    WITH causes AS (SELECT * FROM ${causeRecords('$1')}),
    ${RAISE_FROM_CAUSES}
    SELECT alert_id, device_id, kind, state, created FROM raised`, [causesJson(causes)])
  return alertsOfCauses(causes, rows)
}

/**
 * Received too long ago to be news: its device's alert may have been resolved in the meantime.
 * (One received less than CROSSED_CLOCKS_MS ago cannot be told apart from a resolution in that
 * time anyway: the gateways' clocks are not known better than that.)
 */
export function isLate (cause: AlertCause, nowMs: number): boolean {
  return cause.atMs < nowMs - CROSSED_CLOCKS_MS
}

/**
 * Whether any of these late causes was received before an operator resolved an alert of its
 * device and kind: then `raiseAlerts` has more to do than the single statement of a batch of
 * alarms (events.ts), which is what a batch uses otherwise, late or not.
 */
export async function lateForResolved (q: Queryable, causes: AlertCause[]): Promise<boolean> {
  const nowMs = Date.now()
  const late = causes.filter((c) => isLate(c, nowMs))
  return late.length > 0 && (await resolvedSince(q, late)).length > 0
}

/**
 * Alerts are looked up by their opening time (there is no index by device for resolved ones):
 * a late cause is compared with alerts opened at most this long before it. One open longer
 * than that is left out: the cause is raised at its own time, as any.
 */
const LONGEST_ALERT_MS = 24 * 3_600_000

interface ResolvedAlert {
  id: string
  device_id: string
  kind: AlertKind
  opened_ms: number
  resolved_ms: number
}

/**
 * The resolved alerts of the late causes' devices that were resolved after the earliest of them
 * was received. Only an operator's resolution, on the server's clock: a device's cancel is
 * ordered against its presses by their seq (early-cancels.ts), and its alert's presses sent
 * before it are cancelled with it there.
 */
async function resolvedSince (q: Queryable, late: AlertCause[]): Promise<ResolvedAlert[]> {
  const earliest = Math.min(...late.map((c) => c.atMs))
  return q.query<ResolvedAlert>(`
    SELECT id, device_id, kind, extract(epoch FROM opened_at)::float8 * 1000 AS opened_ms, extract(epoch FROM resolved_at)::float8 * 1000 AS resolved_ms
    FROM alerts
    WHERE state = 'resolved' AND device_id = ANY($1::text[])
      AND opened_at >= to_timestamp($2::float8 / 1000.0) AND resolved_at > to_timestamp($3::float8 / 1000.0)`,
  [[...new Set(late.map((c) => c.deviceId))], earliest - LONGEST_ALERT_MS, earliest])
}

/**
 * The alert an operator resolved that was open when this device event was received, clearly
 * before the resolution (by more than the clocks may be off): the device pressed while its
 * alert was open, and the press reached us only after the operators had dealt with it. It joins
 * that alert as it would have, had it come in time (DESIGN §4 coalescing), instead of opening
 * another for an incident already closed, dated in the past and escalated at once. Only on a
 * measured clock (`onServerClock`): on an unknown one, a new press may look as old as that.
 */
function resolvedAlertDuring (cause: AlertCause, resolved: ResolvedAlert[]): ResolvedAlert | undefined {
  if (!cause.onServerClock || cause.eventId === undefined) return undefined
  return resolved
    .filter((a) => a.device_id === cause.deviceId && a.kind === cause.kind && a.opened_ms <= cause.atMs && cause.atMs < a.resolved_ms - CROSSED_CLOCKS_MS)
    .sort((a, b) => b.opened_ms - a.opened_ms)[0]
}

/**
 * A late cause that did not join a resolved alert, yet is dated before an operator resolved an
 * alert of its device and kind, is raised at the server's time: its own time cannot say whether
 * it belonged to that incident (dealt with) or is a new one (its gateway's clock behind), and
 * dated back it would escalate the moment it is stored, or drag back the opening of the alert
 * it joins (a new incident's).
 */
function placedAfterResolution (cause: AlertCause, resolved: ResolvedAlert[], nowMs: number): AlertCause {
  const resolvedAfter = resolved.some((a) => a.device_id === cause.deviceId && a.kind === cause.kind && a.resolved_ms > cause.atMs)
  return resolvedAfter ? { ...cause, atMs: nowMs } : cause
}

/**
 * Late presses into the resolved alerts they belong to: press count, last press and seq. The
 * alert stays resolved and is not escalated; its device hears that it is. Nothing is added to
 * the audit trail, as for any press that joins an alert: a `resolved` row there would count as
 * a second resolution in the response KPIs. Their events are stored as any.
 */
async function joinResolved (tx: Queryable, causes: AlertCause[], homes: ResolvedAlert[]): Promise<Map<string, RaisedAlert>> {
  if (causes.length === 0) return new Map()
  const joins = new Map<string, { alert_id: string, count: number, last_ms: number, last_seq: number | null }>()
  causes.forEach((c, i) => {
    const id = homes[i]!.id
    const join = joins.get(id) ?? { alert_id: id, count: 0, last_ms: -Infinity, last_seq: null }
    join.count++
    if (c.atMs >= join.last_ms) Object.assign(join, { last_ms: c.atMs, last_seq: c.seq ?? null })
    joins.set(id, join)
  })
  const rows = await tx.query<{ id: string, device_id: string, kind: AlertKind, state: AlertState }>(`
    UPDATE alerts a SET press_count = a.press_count + j.count,
      last_press_at = GREATEST(a.last_press_at, to_timestamp(j.last_ms / 1000.0)),
      last_seq = CASE WHEN to_timestamp(j.last_ms / 1000.0) >= a.last_press_at THEN COALESCE(j.last_seq, a.last_seq) ELSE a.last_seq END,
      updated_at = now()
    FROM json_to_recordset($1::json) AS j(alert_id text, count integer, last_ms float8, last_seq bigint)
    WHERE a.id = j.alert_id
    RETURNING a.id, a.device_id, a.kind, a.state`, [JSON.stringify([...joins.values()])])
  return new Map(rows.map((r) => [r.id, { alertId: r.id, deviceId: r.device_id, kind: r.kind, state: r.state, created: false }]))
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
