import type { Migration } from '../migrations.js'
import { enableTimescale } from '../timescale.js'

/**
 * Version 3: the time-series layer. With TimescaleDB: `events` and `alert_transitions` become
 * hypertables, events get columnar compression segmented by device (the age and the retention
 * come from configuration at every start, see applyStoragePolicies), and the dashboard counts
 * are continuous aggregates. Without it (plain PostgreSQL, embedded PGlite) the same names are
 * plain views with the same columns, so every query a dashboard or the API runs works on both.
 *
 * Why these sources: a continuous aggregate must read a hypertable. Alert counts and response
 * times come from `alert_transitions`, the append-only audit trail, whose rows carry a snapshot
 * of their alert (migration 2). Response times are counted when an alert is resolved, because
 * only then is its outcome known and drills (outcome `test`) can be left out.
 */
export const timescale: Migration = {
  version: 3,
  name: 'hypertables, continuous aggregates (or plain views without TimescaleDB)',
  async apply (tx) {
    if (!await enableTimescale(tx)) {
      for (const sql of aggregateViews(plainBucket, '')) await tx.query(sql)
      return
    }
    await tx.query(`SELECT create_hypertable('events', by_range('time', INTERVAL '1 day'),
      migrate_data => true, create_default_indexes => false)`)
    await tx.query(`SELECT create_hypertable('alert_transitions', by_range('at', INTERVAL '30 days'),
      migrate_data => true, create_default_indexes => false)`)
    await tx.query(`ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
      timescaledb.compress_orderby = 'time DESC')`)
    // materialized_only = false: the newest hour comes from the raw rows (real-time aggregation),
    // so a continuous aggregate answers like the plain view does.
    const continuous = 'WITH (timescaledb.continuous, timescaledb.materialized_only = false)'
    for (const sql of aggregateViews(timescaleBucket, continuous)) await tx.query(`${sql} WITH NO DATA`)
    for (const view of ['alerts_hourly', 'alert_response_hourly', 'device_health_hourly']) {
      // Late rows (a gateway's outbox drained after an outage) land up to a week back.
      await tx.query(`SELECT add_continuous_aggregate_policy('${view}', start_offset => INTERVAL '7 days',
        end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')`)
    }
  }
}

const plainBucket = (column: string) => `date_bin(INTERVAL '1 hour', ${column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')`
const timescaleBucket = (column: string) => `time_bucket(INTERVAL '1 hour', ${column})`

/** Heartbeats further apart than this count as a gap (devices send one a minute; 90 s = online window). */
export const GAP_THRESHOLD_MS = 90_000

/** The dashboard aggregates, hour by hour (UTC buckets), as views of either kind. */
function aggregateViews (bucket: (column: string) => string, options: string): string[] {
  const view = options ? `CREATE MATERIALIZED VIEW` : 'CREATE VIEW'
  return [
    // Alerts per zone, kind and hour: opened (tests apart), closed by outcome, cancelled, escalations.
    `${view} alerts_hourly ${options} AS
     SELECT ${bucket('at')} AS bucket, zone, kind,
       count(*) FILTER (WHERE from_state IS NULL AND NOT test) AS opened,
       count(*) FILTER (WHERE from_state IS NULL AND test) AS opened_test,
       count(*) FILTER (WHERE to_state = 'resolved') AS resolved,
       count(*) FILTER (WHERE to_state = 'resolved' AND outcome = 'real') AS real,
       count(*) FILTER (WHERE to_state = 'resolved' AND outcome IN ('false_alarm', 'prank', 'accidental')) AS false_alarms,
       count(*) FILTER (WHERE to_state = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE from_state = 'open' AND to_state = 'open') AS escalations
     FROM alert_transitions GROUP BY 1, 2, 3`,
    // Response times of alerts resolved in the hour, per zone and kind; tests and drills left out.
    // Sums are kept so that longer periods average correctly (sum / count, not avg of avgs).
    // Replaced by migration 6: this one counted automatic resolutions (a device back online) as
    // operators' responses, and had one count for both sums.
    `${view} alert_response_hourly ${options} AS
     SELECT ${bucket('at')} AS bucket, zone, kind,
       count(*) AS resolved,
       sum(extract(epoch FROM COALESCE(first_response_at, at) - opened_at)::float8) AS ack_seconds_sum,
       max(extract(epoch FROM COALESCE(first_response_at, at) - opened_at)::float8) AS ack_seconds_max,
       sum(extract(epoch FROM at - opened_at)::float8) AS resolve_seconds_sum,
       max(extract(epoch FROM at - opened_at)::float8) AS resolve_seconds_max
     FROM alert_transitions
     WHERE to_state = 'resolved' AND NOT test AND outcome IS DISTINCT FROM 'test'
     GROUP BY 1, 2, 3`,
    // Fleet health per device and hour: traffic, heartbeats, gaps, battery, signal.
    `${view} device_health_hourly ${options} AS
     SELECT ${bucket('time')} AS bucket, device_id,
       count(*) AS events,
       count(*) FILTER (WHERE type = 'heartbeat') AS heartbeats,
       count(*) FILTER (WHERE type = 'test') AS tests,
       count(*) FILTER (WHERE gap_ms > ${GAP_THRESHOLD_MS}) AS gaps,
       max(gap_ms) AS max_gap_ms,
       min(battery) AS min_battery,
       min(rssi) AS min_rssi,
       max(time) AS last_event_at
     FROM events GROUP BY 1, 2`
  ]
}

