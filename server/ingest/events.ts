/** The bulk of every batch: events stored once and device health updated, in one statement. */
import type { Queryable } from '../db/database.js'
import type { GatewayEvent } from '../../protocol/index.js'
import { causeRecords, causesJson, raiseFromCauses, type AlertCause, type RaisedRow } from './raise-alert.js'
import { derivedTime, type ClockOffset } from './gateway-clock.js'

export interface StoredEvents {
  /** Ids of the events stored now (never seen before). */
  fresh: Set<string>
  /** The batch's registered devices that are silent alarms. */
  silent: Set<string>
  /** The alerts raised by `causes` whose events were fresh (see `raiseAlerts`). */
  raised: RaisedRow[]
}

/**
 * Inserts the events whose ids were never seen, and sets each device's last seen time,
 * battery, signal, firmware and gateway from its newest event in the batch, and when it was heard.
 * The last seen time (and the gaps between events) are the gateway's receive times, unless one
 * is far ahead of the server's clock (gateway-clock.ts `derivedTime`, by `clock`, the batch's
 * measured gateway clock): kept there by GREATEST, it stood above every later event for good.
 *
 * With `causes` (the alarms among the events, each naming its event id), the same statement
 * raises their alerts, for the events stored now only: a resent press joins nothing twice.
 *
 * `lockToo`: more devices the caller's transaction will write afterwards (presence changes),
 * locked here with the batch's own, in id order as every batch locks its devices. Locked one by
 * one later, they would be taken in another order than an alarm batch beside it takes the same
 * devices, and the two could deadlock: PostgreSQL notices that only after a second.
 *
 * One statement, so a batch of routine events or alarms is one round trip and atomic without
 * a transaction around it (BEGIN and COMMIT were two more round trips, and the alarm lane
 * sends its batches one after another: each round trip is time the next press waits). Its
 * parts see one snapshot: `gap_ms` (the time since the device's previous event, within the
 * batch, else its last seen time before the batch; the dashboards count heartbeat gaps from
 * it) reads `last_seen_at` as it was before this batch.
 */
export async function storeEvents (q: Queryable, events: GatewayEvent[], options: { causes?: AlertCause[], lockToo?: string[], clock?: ClockOffset, nowMs?: number } = {}): Promise<StoredEvents> {
  const { causes = [], lockToo = [], clock, nowMs = Date.now() } = options
  const seenAt = (e: GatewayEvent) => derivedTime(e.receivedAt, clock, nowMs)
  if (events.length === 0 && lockToo.length === 0) return { fresh: new Set(), silent: new Set(), raised: [] }
  // One row per event id, the first in batch order: the one its answer, its alert and the
  // reused-id check (reused-ids.ts) speak of. (Left to the statement, which copy of an id was
  // kept was the sort's choice: a press reusing a tamper's id was stored in the tamper's place,
  // answered as its duplicate, and lost.)
  const firsts = new Map<string, GatewayEvent>()
  for (const e of events) if (!firsts.has(e.eventId)) firsts.set(e.eventId, e)
  const rows = [...firsts.values()].map((e) => {
    const { pin: _pin, seq, boot, type, ts, battery, rssi, fw, ...rest } = e.event
    return {
      event_id: e.eventId,
      device_id: e.deviceId,
      boot: boot ?? null,
      seq,
      type,
      time_ms: e.receivedAt,
      seen_ms: seenAt(e),
      device_ts_ms: ts ?? null,
      skew_ms: e.skewMs === undefined ? null : clampToInt32(e.skewMs),
      skewed: e.skewed,
      battery: battery ?? null,
      rssi: rssi ?? null,
      fw: fw ?? null,
      gateway_id: e.gatewayId,
      // Whatever else the event carries (a kiosk report); never the cancel PIN.
      data: Object.keys(rest).length > 0 ? rest : null
    }
  })
  const latest = new Map<string, GatewayEvent>()
  for (const e of events) {
    const seen = latest.get(e.deviceId)
    if (!seen || seenAt(seen) <= seenAt(e)) latest.set(e.deviceId, e)
  }
  const health = [...latest.values()].map((e) => ({
    id: e.deviceId, seen_ms: seenAt(e) as number | null, battery: e.event.battery ?? null, rssi: e.event.rssi ?? null, fw: e.event.fw ?? null,
    gateway_id: e.gatewayId as string | null
  }))
  // Devices the caller's transaction will write next (presence changes) are locked here too,
  // with nothing changed: see `lockToo` above.
  for (const id of new Set(lockToo)) if (!latest.has(id)) health.push({ id, seen_ms: null, battery: null, rssi: null, fw: null, gateway_id: null })
  const result = await q.query<{ fresh: string | null, silent: string | null } & Partial<RaisedRow>>(`
    WITH input AS (
      SELECT *
      -- json, not jsonb: the text is taken apart as it is read, without building a jsonb value
      -- first (PostgreSQL: ~4 µs per row against ~7 to read them, ~1.3 µs less per event here).
      FROM json_to_recordset($1::json) AS t(
        event_id text, device_id text, boot text, seq bigint, type text, time_ms float8, seen_ms float8, device_ts_ms float8,
        skew_ms integer, skewed boolean, battery smallint, rssi smallint, fw text, gateway_id text, data jsonb)
    ), fresh AS (
      INSERT INTO event_ids (event_id, received_at)
      SELECT event_id, to_timestamp(time_ms / 1000.0) FROM input
      ON CONFLICT (event_id) DO NOTHING
      RETURNING event_id
    ), stored AS (
      SELECT input.*, lag(seen_ms) OVER (PARTITION BY device_id ORDER BY seen_ms, seq) AS previous_ms
      FROM input JOIN fresh USING (event_id)
    ), inserted AS (
      INSERT INTO events (time, event_id, device_id, boot, seq, type, device_ts, skew_ms, skewed, battery, rssi, fw, gateway_id, data, gap_ms)
      SELECT to_timestamp(s.time_ms / 1000.0), s.event_id, s.device_id, s.boot, s.seq, s.type, to_timestamp(s.device_ts_ms / 1000.0),
             s.skew_ms, s.skewed, s.battery, s.rssi, s.fw, s.gateway_id, s.data,
             -- Late (out of order) events have no meaningful gap.
             NULLIF(GREATEST(s.seen_ms - COALESCE(s.previous_ms, extract(epoch FROM d.last_seen_at) * 1000), -1), -1)::bigint
      FROM stored s LEFT JOIN devices d ON d.id = s.device_id
      RETURNING event_id
    ), locked AS (
      -- The batch's devices, locked one after another in id order: the update below takes its
      -- rows from here. Batches stored at once (alarms beside routine events) that share devices
      -- then wait for each other instead of deadlocking, which PostgreSQL notices only after a
      -- second. Left to the update's plan, the order was the table's on most fleets, and that
      -- moves as rows are updated. $4 holds exactly the ids of $2, so whatever join the update
      -- gets, it reads every row of this (a merge join could stop before the last otherwise).
      SELECT id FROM devices WHERE id = ANY($4::text[]) ORDER BY id FOR NO KEY UPDATE
    ), health AS (
      UPDATE devices d SET
        last_seen_at = GREATEST(d.last_seen_at, to_timestamp(s.seen_ms / 1000.0)),
        battery = COALESCE(s.battery, d.battery), rssi = COALESCE(s.rssi, d.rssi), fw = COALESCE(s.fw, d.fw),
        -- The gateway it is heard through now: the one whose loss would leave it unsupervised
        -- (supervision/gateway-watch.ts). Not from a late event (see LATE below).
        gateway_id = CASE WHEN ${LATE} THEN d.gateway_id ELSE COALESCE(s.gateway_id, d.gateway_id) END,
        -- Heard now, on the database's clock, when one of its events is new here and not late
        -- (a resent or late one tells nothing of it now; the devices only locked here were not
        -- heard at all).
        heard_at = CASE WHEN s.id IN (SELECT device_id FROM stored) AND NOT ${LATE} THEN now() ELSE d.heard_at END
      FROM json_to_recordset($2::json) AS s(id text, seen_ms float8, battery smallint, rssi smallint, fw text, gateway_id text)
        JOIN locked USING (id)
      WHERE d.id = s.id
      RETURNING d.id, d.silent
    ), causes AS (
      SELECT c.* FROM ${causeRecords('$3')} JOIN fresh USING (event_id)
    ), ${raiseFromCauses(causes)}
    SELECT event_id AS fresh, NULL AS silent, NULL AS alert_id, NULL AS device_id, NULL AS kind, NULL AS state, NULL::boolean AS created FROM inserted
    UNION ALL
    SELECT NULL, id, NULL, NULL, NULL, NULL, NULL FROM health WHERE silent
    UNION ALL
    SELECT NULL, NULL, alert_id, device_id, kind, state, created FROM raised`, [writtenOut(rows), JSON.stringify(health), causesJson(causes), health.map((h) => h.id) /* the ids of $2, no more: see `locked` */])
  const stored: StoredEvents = { fresh: new Set(), silent: new Set(), raised: [] }
  for (const row of result) {
    if (row.fresh != null) stored.fresh.add(row.fresh)
    else if (row.silent != null) stored.silent.add(row.silent)
    else if (row.alert_id != null) stored.raised.push(row as RaisedRow)
  }
  return stored
}

/**
 * The events as the statement reads them. A field nested thousands deep (no gateway forwards
 * one, a forged one could) cannot be written out: JSON.stringify runs out of stack. That is
 * the data's fault, for good, so it is answered as the database answers data it refuses
 * (SQLSTATE 22000), and the batch is stored without that event (ingest.ts).
 */
function writtenOut (rows: unknown[]): string {
  try {
    return JSON.stringify(rows)
  } catch (err) {
    if (!(err instanceof RangeError)) throw err
    throw Object.assign(new Error(`an event cannot be written out: ${err.message}`), { code: '22000' })
  }
}

/**
 * An event is late when it is older than its device's last seen time and was received more than
 * two minutes ago, on the database's clock: drained from an outbox after an outage, from a
 * gateway the device has left. Both, because gateway clocks differ: a device that moves from a
 * gateway running fast to one running right has its events older than its last seen for a
 * while, and they are news all the same. (Its gateway's clock more than two minutes off, an
 * event may be taken as late or as news wrongly; the next one puts it right.)
 */
const LATE = `(d.last_seen_at IS NOT NULL AND to_timestamp(s.seen_ms / 1000.0) < d.last_seen_at
                    AND to_timestamp(s.seen_ms / 1000.0) < now() - INTERVAL '2 minutes')`

/**
 * `skew_ms` is a 32-bit column (±24.8 days). A device whose clock is far off (an RTC that
 * reset to 1970 when its backup cell died) must still have its press stored: beyond that range
 * the skew is kept as the range's end, `skewed` says the rest. Out of range, PostgreSQL refused
 * the whole batch, and the gateway sent it again forever.
 */
function clampToInt32 (value: number): number {
  return Math.max(-2_147_483_648, Math.min(2_147_483_647, value))
}
