/**
 * Late alarm causes: a press received too long ago to be news (held in a gateway's outbox, or
 * sent through a gateway whose clock was set between the press and the sending). One dated
 * before an alert of its device and kind was closed (resolved by an operator, cancelled on the
 * device) is dated at the server's time instead. Its own time cannot say whether it belonged to
 * the incident dealt with, or is a new one whose time is off: dated back, it would escalate the
 * moment it is stored, or drag back the opening of the new alert it joins, and its response
 * times would count minutes nobody waited. It never joins the closed alert: a new press
 * swallowed into a closed incident is the one mistake an alarm must not make; a second alert an
 * operator closes at a glance is not.
 *
 * Decided under the locks of the alerts it compares with (`PLACE_LATE_CAUSES`), held until the
 * alerts are raised: in the statement that raises them (a batch stored by one statement), or
 * in one just before, in the batch's transaction (raise-alert.ts `placeLateCauses`). Looked up
 * before, without them, an operator resolving in between (the check saw the alert open, the
 * raise found it closed) gave an alert dated in the past, escalated at once.
 */
import type { AlertCause } from './raise-alert.js'
import { CROSSED_CLOCKS_MS } from './cancel.js'

/**
 * The causes, each late one marked with the time to date it at (`nowMs`, the server's) should
 * it fall before a closing. (One received less than CROSSED_CLOCKS_MS ago cannot be told apart
 * from a closing in that time anyway: the gateways' clocks are not known better than that.)
 */
export function markLateCauses (causes: AlertCause[], nowMs = Date.now()): AlertCause[] {
  return causes.map((c) => c.atMs < nowMs - CROSSED_CLOCKS_MS ? { ...c, redateAtMs: nowMs } : c)
}

/**
 * When an alert was closed, or `infinity` while it is active: the expression of the index
 * `alerts_device_closing` (migration 13), which must stay written the same for the index to
 * serve (tests/server/late-alarms-index.test.ts checks the plan).
 */
const CLOSING = "COALESCE(a.resolved_at, a.cancelled_at, 'infinity'::timestamptz)"

/**
 * CTEs reading a CTE `causes` (the rows of `causeRecords`), ending in `placed`: the causes with
 * each late one (`redate_ms` set) dated at `redate_ms` when an alert of its device and kind was
 * closed after it. For causes of which one at least is late (`placedCauses`).
 *
 * `closings` locks, in device order (as the raise and the escalator take alerts), every alert
 * of the causes' devices that is active or was closed after the earliest late cause, and reads
 * each as its newest version: a resolution that committed while the statement waited for the
 * lock is seen, and one not yet begun waits until the statement's transaction ends (the press
 * then joined the alert while it was open). Its active alerts all locked here, before the raise
 * takes any, a batch never holds a later device's alert while waiting for an earlier one's.
 * A batch stored by one statement pays no round trip for it (the look-up before the statement
 * was one more); one stored in a transaction pays the one it paid before (raise-alert.ts
 * `placeLateCauses`).
 */
const PLACE_LATE_CAUSES = `
    closings AS MATERIALIZED (
      SELECT a.device_id, a.kind, ${CLOSING} AS closing
      FROM alerts a
      WHERE a.device_id = ANY (ARRAY(SELECT device_id FROM causes))
        -- Read only for a late cause; the earliest one's time.
        AND ${CLOSING} > (SELECT to_timestamp(min(at_ms) / 1000.0) FROM causes WHERE redate_ms IS NOT NULL)
      ORDER BY a.device_id, a.kind, a.id
      FOR UPDATE OF a
    ), placed AS (
      SELECT c.ord, c.device_id, c.kind, c.seq, c.boot, c.event_id, c.received_ms, c.actor, c.note,
             -- The first late cause reads every row of closings (an aggregate), so all are
             -- locked before the raise takes any alert; causes not late read nothing.
             CASE WHEN c.redate_ms IS NOT NULL AND (
                    SELECT max(x.closing) FROM closings x
                    WHERE x.device_id = c.device_id AND x.kind = c.kind AND x.closing < 'infinity'::timestamptz
                  ) > to_timestamp(c.at_ms / 1000.0)
                  THEN c.redate_ms ELSE c.at_ms END AS at_ms
      FROM causes c
    )`

/** `placed` for causes none of which is late: as they are. */
const CAUSES_AS_THEY_ARE = `
    placed AS (SELECT ord, device_id, kind, seq, boot, event_id, received_ms, actor, note, at_ms FROM causes)`

/**
 * CTEs reading a CTE `causes` and ending in `placed` (see PLACE_LATE_CAUSES). Nearly every
 * batch holds no late cause: its statement is written without the look-up, which would cost it
 * nothing to run but a tenth of a millisecond to plan, on the path every alarm takes.
 */
export function placedCauses (causes: AlertCause[]): string {
  return causes.some((c) => c.redateAtMs !== undefined) ? PLACE_LATE_CAUSES : CAUSES_AS_THEY_ARE
}
