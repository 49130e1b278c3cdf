import type { Migration } from '../migrations.js'

/**
 * Version 10: a press and its cancel that reach the server in the wrong order.
 * The two can cross on their way: the press held in one gateway's outbox (its disk hanging, or
 * the gateway restarting) while the cancel goes through another, or from memory. Such a cancel,
 * with the right PIN, is kept as `early`, with the device's `boot` and `seq` that order it
 * after the press it cancels; the press's alert is cancelled the moment it opens
 * (ingest/early-cancels.ts). A cancel that comes after a press the device sent after it is
 * `stale`, and stands nothing down (ingest/cancel.ts): `alert_presses` says which presses an
 * alert holds.
 */
/**
 * The alerts active at the upgrade, filled in from their device's presses since each opened
 * (less the clocks' leeway): a cancel arriving after a press the device sent after it must find
 * that press in the window around the upgrade too.
 */
export const BACKFILL_ALERT_PRESSES = `
INSERT INTO alert_presses (alert_id, event_id, boot, seq, received_at)
SELECT a.id, e.event_id, e.boot, e.seq, e.time
FROM alerts a JOIN devices d ON d.id = a.device_id
  JOIN events e ON e.device_id = a.device_id AND e.type IN ('press', 'hold') AND e.time >= a.opened_at - INTERVAL '5 seconds'
WHERE a.kind = 'panic' AND a.state IN ('open', 'acknowledged', 'dispatched') AND d.pin_hash IS NOT NULL
ON CONFLICT DO NOTHING`

export const earlyCancels: Migration = {
  version: 10,
  name: 'cancels that arrive before their press',
  sql: `
ALTER TABLE cancel_attempts ADD COLUMN boot text, ADD COLUMN seq bigint;
ALTER TABLE cancel_attempts DROP CONSTRAINT cancel_attempts_result_check;
ALTER TABLE cancel_attempts ADD CONSTRAINT cancel_attempts_result_check
  CHECK (result IN ('cancelled', 'wrong_pin', 'window_closed', 'no_alert', 'no_pin', 'early', 'stale'));
-- The presses each active panic alert holds, which a cancel is ordered against
-- (ingest/cancel.ts): the device's boot and seq, and the gateway's receive time, of every press
-- or hold raised into it, for devices that can cancel (with a PIN). Gone when the alert closes.
CREATE TABLE alert_presses (
  alert_id    text NOT NULL,
  event_id    text NOT NULL,
  boot        text,
  seq         bigint,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (alert_id, event_id)
);
${BACKFILL_ALERT_PRESSES};
`
}
