/**
 * Presses that reach the server after the cancel that followed them. A device's events keep
 * their order through one gateway's lanes, but a press and its cancel can still cross: the press
 * held in a gateway's outbox (its disk hanging, or the gateway restarting) while the cancel goes
 * from memory or through another gateway. The cancel then finds no alert (kept as `early`,
 * cancel.ts), or only the alert of an earlier press, and the late press opened an alert that
 * nobody would cancel: a patrol sent to a shop whose owner had cancelled in time.
 *
 * So a panic alert opened now is cancelled at once when a cancel with the right PIN, from the
 * same device and boot, has a higher seq than the press that opened it (the device sent it
 * after) and was received within the cancel window of it, on either side (the two may have
 * come through gateways whose clocks differ). Its device heard `rejected` for the cancel then;
 * it hears `cancelled` now, as for any cancel.
 *
 * After the batch that opened the alert is committed, in a transaction of its own: should the
 * server die between the two, the alert stays open, as it did before this existed.
 */
import type { Database } from '../db/database.js'
import type { GatewayEvent } from '../../protocol/index.js'
import { SELECT_LOCKED_ALERT, type AlertLifecycle, type LockedAlert } from '../alerts/lifecycle.js'
import type { RaisedAlert } from './raise-alert.js'

/** A panic alert opened by this batch, and the press that opened it. */
export interface OpenedAlert {
  alert: RaisedAlert
  press: GatewayEvent
}

interface CancelSeen {
  event_id: string
  device_id: string
  at_ms: number | string
  boot: string | null
  seq: number | string | null
  result: 'early' | 'cancelled'
}

/** Cancels each alert that a cancel received before its press stands down; returns their ids. */
export async function cancelLatePresses (db: Database, opened: OpenedAlert[], lifecycle: AlertLifecycle, windowMs: number): Promise<string[]> {
  if (opened.length === 0) return []
  // One indexed look per batch that opened a panic alert (rare: an incident's first press).
  const seen = await db.query<CancelSeen>(`
    SELECT event_id, device_id, extract(epoch FROM at) * 1000 AS at_ms, boot, seq, result FROM cancel_attempts
    WHERE device_id = ANY($1::text[]) AND result IN ('early', 'cancelled') AND at >= to_timestamp($2 / 1000.0)
    ORDER BY at`, [[...new Set(opened.map((o) => o.press.deviceId))], Math.min(...opened.map((o) => o.press.receivedAt)) - windowMs])
  if (seen.length === 0) return []
  const cancelled: string[] = []
  for (const { alert, press } of opened) {
    const cancel = seen.find((c) => c.device_id === press.deviceId && c.seq !== null && Number(c.seq) > press.event.seq &&
      (c.boot ?? undefined) === press.event.boot && Math.abs(Number(c.at_ms) - press.receivedAt) <= windowMs)
    if (!cancel) continue
    const done = await db.transaction(async (tx) => {
      // The device first, then its alert, as every batch takes them (ingest.ts).
      await tx.query('SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE', [press.deviceId])
      const [locked] = await tx.query<LockedAlert>(
        `${SELECT_LOCKED_ALERT} WHERE a.id = $1 AND a.state IN ('open', 'acknowledged') FOR UPDATE OF a`, [alert.alertId])
      if (!locked) return false
      // An early cancel is spent on the first alert it stands down; one that already cancelled
      // the alert of the press before keeps that alert's id.
      await tx.query("UPDATE cancel_attempts SET result = 'cancelled', alert_id = $2, reason = NULL WHERE event_id = $1 AND result = 'early'", [cancel.event_id, alert.alertId])
      await lifecycle.transition(tx, locked, 'cancelled', {
        actor: `device:${press.deviceId}`,
        note: 'cancelled on the device with its PIN; the cancel reached the server before this press',
        seq: Number(cancel.seq)
      })
      return true
    })
    if (done) cancelled.push(alert.alertId)
  }
  return cancelled
}
