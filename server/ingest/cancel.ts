/**
 * Device cancels (counter devices, DESIGN.md §4): the device PIN inside the cancel window
 * cancels the open panic alert and the device hears `cancelled`; anything else changes
 * nothing, is recorded in `cancel_attempts`, and the device hears `rejected` with the reason.
 * A cancel with the right PIN that finds no alert is kept as `early`: its press may still be
 * on its way, and is cancelled when it comes (early-cancels.ts). One that finds an alert the
 * device pressed again after it (the cancel held up on its way) is `stale`: the alarm stands.
 */
import type { Queryable } from '../db/database.js'
import { REUSED_MARK, type GatewayEvent } from '../../protocol/index.js'
import { verifySecret } from '../../protocol/secret-hash.js'
import { SELECT_LOCKED_ALERT, type AlertLifecycle, type LockedAlert } from '../alerts/lifecycle.js'

/** `none`: the device has no PIN; `missing`: the event carried none. */
export type PinCheck = 'ok' | 'wrong' | 'missing' | 'none'

export type CancelResult = 'cancelled' | 'wrong_pin' | 'window_closed' | 'no_alert' | 'no_pin' | 'early' | 'stale'

export interface CancelOutcome {
  result: CancelResult
  reason?: string
  alert?: LockedAlert
}

/** After this many wrong PINs on one alert, cancel is refused: a PIN is 4–8 digits. */
export const MAX_WRONG_PINS = 5

/**
 * Between a press and a cancel of one device that came through two gateways, the order their
 * receive times give may be wrong by this much (the gateways' clocks): times closer than this
 * tell nothing of which the device sent first.
 */
export const CROSSED_CLOCKS_MS = 5_000

/**
 * Checks PINs before the batch transaction: scrypt is slow on purpose, and a transaction must
 * not wait on it. Returns a check per cancel event id.
 */
export async function checkPins (db: Queryable, cancels: GatewayEvent[]): Promise<Map<string, PinCheck>> {
  const checks = new Map<string, PinCheck>()
  if (cancels.length === 0) return checks
  const rows = await db.query<{ id: string, pin_hash: string | null }>(
    'SELECT id, pin_hash FROM devices WHERE id = ANY($1::text[])', [[...new Set(cancels.map((e) => e.deviceId))]])
  const hashes = new Map(rows.map((r) => [r.id, r.pin_hash]))
  await Promise.all(cancels.map(async (e) => {
    const hash = hashes.get(e.deviceId)
    const check: PinCheck = !hash ? 'none' : e.event.pin === undefined ? 'missing' : await verifySecret(e.event.pin, hash) ? 'ok' : 'wrong'
    checks.set(e.eventId, check)
  }))
  return checks
}

export async function applyCancel (tx: Queryable, e: GatewayEvent, pin: PinCheck, lifecycle: AlertLifecycle, windowMs: number): Promise<CancelOutcome> {
  const rows = await tx.query<LockedAlert>(`${SELECT_LOCKED_ALERT}
    WHERE a.device_id = $1 AND a.kind = 'panic' AND a.state IN ('open', 'acknowledged', 'dispatched') FOR UPDATE OF a`, [e.deviceId])
  const alert = rows[0]
  const outcome = await decide(tx, e, pin, alert, windowMs)
  if (outcome.result === 'cancelled' && alert) {
    await lifecycle.transition(tx, alert, 'cancelled', { actor: `device:${e.deviceId}`, note: 'cancelled on the device with its PIN', seq: e.event.seq })
  }
  await tx.query(
    `INSERT INTO cancel_attempts (event_id, device_id, alert_id, at, result, reason, boot, seq)
     VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING`,
    [e.eventId, e.deviceId, alert?.id ?? null, e.receivedAt, outcome.result, outcome.reason ?? null, e.event.boot ?? null, e.event.seq])
  return { ...outcome, alert }
}

async function decide (tx: Queryable, e: GatewayEvent, pin: PinCheck, alert: LockedAlert | undefined, windowMs: number): Promise<CancelOutcome> {
  // The device hears `rejected` either way: its press may never come. Should it come, sent
  // before this cancel, the device hears `cancelled` then (early-cancels.ts, which counts the
  // wrong PINs kept here against it).
  if (!alert) return { result: pin === 'ok' ? 'early' : pin === 'wrong' ? 'wrong_pin' : 'no_alert', reason: 'no open alert to cancel' }
  if (alert.state === 'dispatched') return { result: 'no_alert', reason: 'help is already on the way; only the ward can stand it down' }
  if (pin === 'none') return { result: 'no_pin', reason: 'this device has no cancel PIN' }
  if (pin === 'missing') return { result: 'no_pin', reason: 'cancel needs the PIN' }
  // The window is checked before the PIN, so a PIN cannot be guessed once it has passed. It is
  // measured on the clock that stamped both the press and the cancel, their gateway's: the
  // alert's own time may be the server's (never in the future, see ingest.ts causeOf), and
  // mixing the two would let a cancel through long after the window when the gateway runs fast.
  const [opening] = await tx.query<{ at: Date }>(
    'SELECT i.received_at AS at FROM alerts a JOIN event_ids i ON i.event_id = a.opened_by_event WHERE a.id = $1', [alert.id])
  if (e.receivedAt - (opening?.at ?? alert.opened_at).getTime() > windowMs) {
    return { result: 'window_closed', reason: `the cancel window (${Math.round(windowMs / 1000)} s) has passed; call the ward` }
  }
  const wrong = await tx.query<{ n: number }>(
    "SELECT count(*)::int8 AS n FROM cancel_attempts WHERE alert_id = $1 AND result = 'wrong_pin'", [alert.id])
  if ((wrong[0]?.n ?? 0) >= MAX_WRONG_PINS) return { result: 'wrong_pin', reason: 'too many wrong PINs' }
  if (pin === 'wrong') return { result: 'wrong_pin', reason: 'wrong PIN' }
  const cancel = { eventId: e.eventId, boot: e.event.boot ?? null, seq: e.event.seq, atMs: e.receivedAt }
  if (await pressedAfter(tx, alert.id, cancel)) return { result: 'stale', reason: 'pressed again after this cancel: the alarm stands' }
  return { result: 'cancelled' }
}

/** A cancel as `pressedAfter` orders it against presses. */
export interface CancelPoint {
  eventId: string
  boot: string | null
  seq: number
  /** Gateway receive time, epoch ms. */
  atMs: number
}

/**
 * Whether the alert holds a press the device sent after this cancel: a new alarm (the person
 * pressed again), which the cancel, held up on its way (an outbox on a hanging disk, a gateway
 * restarting), must not stand down. Within one boot the seq says which came first. Across boots,
 * or where a seq was reused (an id of its own: protocol/reused-ids.ts), only the gateways'
 * receive times can, and they may be `CROSSED_CLOCKS_MS` off: such a press counts as after the
 * cancel unless it was received clearly before it. The alert's presses are those raised into
 * it (`alert_presses`); presses later in the cancel's own batch are not, yet.
 */
export async function pressedAfter (tx: Queryable, alertId: string, cancel: CancelPoint): Promise<boolean> {
  const rows = await tx.query(`
    SELECT 1 FROM alert_presses p
    WHERE p.alert_id = $1
      AND CASE WHEN $2::boolean AND p.boot IS NOT DISTINCT FROM $3::text AND strpos(p.event_id, $4::text) = 0 THEN p.seq > $5::bigint
               ELSE p.received_at > to_timestamp(($6::float8 - $7::integer) / 1000.0) END
    LIMIT 1`, [alertId, !cancel.eventId.includes(REUSED_MARK), cancel.boot, REUSED_MARK, cancel.seq, cancel.atMs, CROSSED_CLOCKS_MS])
  return rows.length > 0
}

/** The recorded answers to cancels already processed (a resent cancel hears the same). */
export async function previousCancels (tx: Queryable, eventIds: string[]): Promise<Map<string, { result: CancelResult, reason: string | null, alert_id: string | null }>> {
  if (eventIds.length === 0) return new Map()
  const rows = await tx.query<{ event_id: string, result: CancelResult, reason: string | null, alert_id: string | null }>(
    'SELECT event_id, result, reason, alert_id FROM cancel_attempts WHERE event_id = ANY($1::text[])', [eventIds])
  return new Map(rows.map((r) => [r.event_id, r]))
}
