/**
 * Stores batches of gateway events exactly once and turns them into alerts.
 *
 * One transaction per batch, a constant number of statements for the bulk (events, device
 * health), one statement per alert-raising event (presses are rare next to heartbeats).
 * Idempotent: an event id already stored is reported `duplicate` and changes nothing.
 */
import { randomUUID } from 'node:crypto'
import type { Database, Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { GatewayEvent, IngestResult } from '../../protocol/index.js'
import { ALERT_KIND_OF_EVENT, type AlertKind, type AlertState } from '../alerts/model.js'

interface RaisedAlert {
  alertId: string
  deviceId: string
  kind: AlertKind
  state: AlertState
  created: boolean
}

export class Ingestor {
  constructor (private readonly db: Database, private readonly bus: Bus) {}

  async ingest (events: GatewayEvent[]): Promise<IngestResult[]> {
    if (events.length === 0) return []
    const { fresh, raised } = await this.db.transaction(async (tx) => {
      const fresh = await insertEvents(tx, events)
      await updateDeviceHealth(tx, events)
      const raised = new Map<string, RaisedAlert>()
      for (const e of unique(events)) {
        const kind = ALERT_KIND_OF_EVENT[e.event.type]
        const alert = kind && fresh.has(e.eventId) ? await raiseAlert(tx, e, kind) : null
        if (alert) raised.set(e.eventId, alert)
      }
      return { fresh, raised }
    })
    for (const alert of raised.values()) {
      this.bus.emit('alert', { alertId: alert.alertId, deviceId: alert.deviceId, state: alert.state, kind: alert.kind })
    }
    const reported = new Set<string>()
    return events.map((e) => {
      const alert = raised.get(e.eventId)
      const firstTime = fresh.has(e.eventId) && !reported.has(e.eventId)
      reported.add(e.eventId)
      return {
        eventId: e.eventId,
        status: firstTime ? 'stored' : 'duplicate',
        ...(alert ? { alertId: alert.alertId, alertState: alert.state } : {})
      }
    })
  }
}

/** The first of each event id, in batch order (a batch may repeat an event the device resent). */
function unique (events: GatewayEvent[]): GatewayEvent[] {
  const seen = new Set<string>()
  return events.filter((e) => !seen.has(e.eventId) && seen.add(e.eventId))
}

/** Inserts the events whose ids were never seen; returns those ids. */
async function insertEvents (tx: Queryable, events: GatewayEvent[]): Promise<Set<string>> {
  const rows = events.map((e) => {
    const { pin: _pin, seq, boot, type, ts, battery, rssi, fw, ...rest } = e.event
    return {
      event_id: e.eventId,
      device_id: e.deviceId,
      boot: boot ?? null,
      seq,
      type,
      time_ms: e.receivedAt,
      device_ts_ms: ts ?? null,
      skew_ms: e.skewMs ?? null,
      skewed: e.skewed,
      battery: battery ?? null,
      rssi: rssi ?? null,
      fw: fw ?? null,
      gateway_id: e.gatewayId,
      // Whatever else the event carries (a kiosk report); never the cancel PIN.
      data: Object.keys(rest).length > 0 ? rest : null
    }
  })
  const inserted = await tx.query<{ event_id: string }>(`
    WITH input AS (
      SELECT DISTINCT ON (event_id) *
      FROM jsonb_to_recordset($1::jsonb) AS t(
        event_id text, device_id text, boot text, seq bigint, type text, time_ms float8, device_ts_ms float8,
        skew_ms integer, skewed boolean, battery smallint, rssi smallint, fw text, gateway_id text, data jsonb)
    ), fresh AS (
      INSERT INTO event_ids (event_id, received_at)
      SELECT event_id, to_timestamp(time_ms / 1000.0) FROM input
      ON CONFLICT (event_id) DO NOTHING
      RETURNING event_id
    )
    INSERT INTO events (time, event_id, device_id, boot, seq, type, device_ts, skew_ms, skewed, battery, rssi, fw, gateway_id, data)
    SELECT to_timestamp(time_ms / 1000.0), event_id, device_id, boot, seq, type, to_timestamp(device_ts_ms / 1000.0),
           skew_ms, skewed, battery, rssi, fw, gateway_id, data
    FROM input JOIN fresh USING (event_id)
    RETURNING event_id`, [JSON.stringify(rows)])
  return new Set(inserted.map((r) => r.event_id))
}

/** Last seen, battery, signal and firmware per device, from the newest event of the batch. */
async function updateDeviceHealth (tx: Queryable, events: GatewayEvent[]): Promise<void> {
  const latest = new Map<string, GatewayEvent>()
  for (const e of events) {
    const seen = latest.get(e.deviceId)
    if (!seen || seen.receivedAt <= e.receivedAt) latest.set(e.deviceId, e)
  }
  const rows = [...latest.values()].map((e) => ({
    id: e.deviceId, seen_ms: e.receivedAt, battery: e.event.battery ?? null, rssi: e.event.rssi ?? null, fw: e.event.fw ?? null
  }))
  await tx.query(`
    UPDATE devices d SET
      last_seen_at = GREATEST(d.last_seen_at, to_timestamp(s.seen_ms / 1000.0)),
      battery = COALESCE(s.battery, d.battery), rssi = COALESCE(s.rssi, d.rssi), fw = COALESCE(s.fw, d.fw)
    FROM jsonb_to_recordset($1::jsonb) AS s(id text, seen_ms float8, battery smallint, rssi smallint, fw text)
    WHERE d.id = s.id`, [JSON.stringify(rows)])
}

/** Opens an alert of `kind` for the device, or joins the one still active (coalescing). */
async function raiseAlert (tx: Queryable, e: GatewayEvent, kind: AlertKind): Promise<RaisedAlert | null> {
  const rows = await tx.query<{ id: string, state: AlertState, created: boolean }>(`
    INSERT INTO alerts (id, device_id, kind, state, zone, test, opened_at, last_press_at, last_seq, opened_by_event)
    SELECT $1, d.id, $2, 'open', d.zone, false, to_timestamp($3 / 1000.0), to_timestamp($3 / 1000.0), $4, $5
    FROM devices d WHERE d.id = $6
    ON CONFLICT (device_id, kind) WHERE state IN ('open', 'acknowledged', 'dispatched')
    DO UPDATE SET press_count = alerts.press_count + 1,
                  last_press_at = GREATEST(alerts.last_press_at, EXCLUDED.last_press_at),
                  last_seq = EXCLUDED.last_seq,
                  updated_at = now()
    RETURNING id, state, (xmax = 0) AS created`,
  [randomUUID(), kind, e.receivedAt, e.event.seq, e.eventId, e.deviceId])
  const row = rows[0]
  // Not registered (removed after the gateway accepted the event): the event is stored, no alert.
  // Throwing here would fail the batch and make the gateway resend it forever.
  if (!row) return null
  if (row.created) {
    await tx.query(
      'INSERT INTO alert_transitions (alert_id, from_state, to_state, at, actor) VALUES ($1, NULL, $2, to_timestamp($3 / 1000.0), $4)',
      [row.id, 'open', e.receivedAt, `device:${e.deviceId}`])
  }
  return { alertId: row.id, deviceId: e.deviceId, kind, state: row.state, created: row.created }
}
