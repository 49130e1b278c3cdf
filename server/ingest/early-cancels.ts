/**
 * Presses that reach the server after the cancel that followed them. A device's events keep
 * their order through one gateway's lanes, but a press and its cancel can still cross: the press
 * held in a gateway's outbox (its disk hanging, or the gateway restarting) while the cancel goes
 * from memory or through another gateway. The cancel then finds no alert (kept as `early`,
 * cancel.ts), or only the alert of an earlier press, or one holding a press sent after it (kept
 * as `stale`), and the late press opened an alert that nobody would cancel: a patrol sent to a
 * shop whose owner had cancelled in time.
 *
 * So a panic alert presses open now is cancelled at once when a cancel with the right PIN
 * followed every one of them on the device: the same device and boot, a higher seq, received
 * within the cancel window after the first (and not more than a few seconds before any: through
 * two gateways, their clocks may differ that much). A press after the cancel is a new alarm,
 * and keeps the alert open, even one that joins it before the cancel is applied (checked again
 * under the alert's lock: `pressedAfter`). Not for a press or cancel stored under an id of its
 * own (its device reused the seq: a higher seq says nothing of order then), nor when wrong
 * PINs were tried `MAX_WRONG_PINS` times in between (the lockout a cancel of an open alert
 * has). Its device heard `rejected` for the cancel then; it hears `cancelled` now, as for any
 * cancel.
 *
 * In the batch's own transaction when it has one. A batch of presses alone is one statement,
 * committed by itself: each cancel follows in a transaction of its own, a few milliseconds
 * later, and until then the alert is open for all to see (the escalator could act on it in
 * between: a late press is often due for escalation the moment it is stored).
 */
import type { Queryable } from '../db/database.js'
import { REUSED_MARK, type GatewayEvent } from '../../protocol/index.js'
import { SELECT_LOCKED_ALERT, type AlertLifecycle, type LockedAlert } from '../alerts/lifecycle.js'
import { CROSSED_CLOCKS_MS, MAX_WRONG_PINS, pressedAfter } from './cancel.js'
import type { RaisedAlert } from './raise-alert.js'

/** A panic alert opened by this batch, and its presses in the batch, the first of which opened it. */
export interface OpenedAlert {
  alertId: string
  deviceId: string
  presses: GatewayEvent[]
}

/** The panic alerts a batch opened (by event id: `raised`), each with its presses in the batch, in order. */
export function alertsOpened (events: GatewayEvent[], raised: ReadonlyMap<string, RaisedAlert>): OpenedAlert[] {
  const opened = new Map<string, OpenedAlert>()
  for (const e of events) {
    const alert = raised.get(e.eventId)
    if (alert?.kind !== 'panic') continue
    if (alert.created) opened.set(alert.alertId, { alertId: alert.alertId, deviceId: alert.deviceId, presses: [] })
    opened.get(alert.alertId)?.presses.push(e)
  }
  return [...opened.values()]
}

interface CancelSeen {
  event_id: string
  device_id: string
  at_ms: number | string
  boot: string | null
  seq: number | string | null
  result: 'early' | 'cancelled' | 'stale' | 'wrong_pin'
}

/** An alert opened now, and the cancel, received before, that followed its presses. */
export interface LateCancel {
  alertId: string
  deviceId: string
  cancel: CancelSeen
}

/** The alerts opened now that a cancel received before their presses stands down. */
export async function lateCancels (q: Queryable, opened: OpenedAlert[], windowMs: number): Promise<LateCancel[]> {
  const alerts = opened.filter(({ presses }) => presses.length > 0 && presses.every((p) => !p.eventId.includes(REUSED_MARK)))
  if (alerts.length === 0) return []
  // One indexed look per batch that opened a panic alert (rare: an incident's first press).
  const seen = await q.query<CancelSeen>(`
    SELECT event_id, device_id, extract(epoch FROM at) * 1000 AS at_ms, boot, seq, result FROM cancel_attempts
    WHERE device_id = ANY($1::text[]) AND result IN ('early', 'cancelled', 'stale', 'wrong_pin') AND at >= to_timestamp($2 / 1000.0)
    ORDER BY at`, [[...new Set(alerts.map((a) => a.deviceId))], Math.min(...alerts.flatMap((a) => a.presses.map((p) => p.receivedAt))) - CROSSED_CLOCKS_MS])
  return alerts.flatMap(({ alertId, deviceId, presses }) => {
    const cancel = seen.length === 0 ? undefined : cancelOf(presses, seen.filter((c) => c.device_id === deviceId), windowMs)
    return cancel ? [{ alertId, deviceId, cancel }] : []
  })
}

/** In a batch's own transaction: cancels the alerts it opened that a cancel received before stands down; their ids. */
export async function cancelLatePresses (tx: Queryable, opened: OpenedAlert[], lifecycle: AlertLifecycle, windowMs: number): Promise<string[]> {
  const cancelled: string[] = []
  for (const late of await lateCancels(tx, opened, windowMs)) if (await cancelLate(tx, late, lifecycle)) cancelled.push(late.alertId)
  return cancelled
}

/** Cancels the alert, when it is still open or acknowledged, in the caller's transaction. */
export async function cancelLate (tx: Queryable, { alertId, deviceId, cancel }: LateCancel, lifecycle: AlertLifecycle): Promise<boolean> {
  // The device first, then its alert, as every batch takes them (ingest.ts).
  await tx.query('SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE', [deviceId])
  const [locked] = await tx.query<LockedAlert>(
    `${SELECT_LOCKED_ALERT} WHERE a.id = $1 AND a.state IN ('open', 'acknowledged') FOR UPDATE OF a`, [alertId])
  if (!locked) return false
  // Under the lock, once more: a press the device sent after the cancel may have joined the
  // alert since this batch committed (through another gateway). That alarm stands.
  if (await pressedAfter(tx, alertId, { eventId: cancel.event_id, boot: cancel.boot, seq: Number(cancel.seq), atMs: Number(cancel.at_ms) })) return false
  // An early (or stale) cancel names the alert it stood down; one that had stood down the alert
  // of the press before keeps that one's.
  await tx.query("UPDATE cancel_attempts SET result = 'cancelled', alert_id = $2, reason = NULL WHERE event_id = $1 AND result IN ('early', 'stale')", [cancel.event_id, alertId])
  await lifecycle.transition(tx, locked, 'cancelled', {
    actor: `device:${deviceId}`,
    note: 'cancelled on the device with its PIN; the cancel reached the server before the press',
    seq: Number(cancel.seq)
  })
  return true
}

/**
 * The cancel (of the alert's device) that followed all of its presses, if any: one that stood
 * nothing down yet (early, stale) first, then the nearest after them. None once wrong PINs were tried too
 * often between the first press and it.
 */
function cancelOf (presses: GatewayEvent[], seen: CancelSeen[], windowMs: number): CancelSeen | undefined {
  const first = presses[0]!
  // A cancel stored under an id of its own (its device reused the seq) says nothing of order.
  const followsAll = (c: CancelSeen) => c.seq !== null && !c.event_id.includes(REUSED_MARK) && Number(c.at_ms) - first.receivedAt <= windowMs &&
    presses.every((p) => Number(c.seq) > p.event.seq && (c.boot ?? undefined) === p.event.boot && Number(c.at_ms) >= p.receivedAt - CROSSED_CLOCKS_MS)
  const followed = seen.filter(followsAll)
  const rights = followed.filter((c) => c.result !== 'wrong_pin').sort((a, b) =>
    Number(b.result !== 'cancelled') - Number(a.result !== 'cancelled') || Number(a.seq) - Number(b.seq))
  const cancel = rights[0]
  if (!cancel) return undefined
  const wrongBefore = followed.filter((c) => c.result === 'wrong_pin' && Number(c.seq) < Number(cancel.seq)).length
  return wrongBefore >= MAX_WRONG_PINS ? undefined : cancel
}
