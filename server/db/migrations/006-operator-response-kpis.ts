import type { Migration } from '../migrations.js'
import { isContinuousAggregate } from '../timescale.js'

/**
 * Version 6: the response KPIs measure operators, not devices. A `device_offline` alert that
 * closes by itself (the device back online, presence.ts; heard again, gateway-watch.ts) was
 * counted as if an operator had resolved it, and, never acknowledged, as acknowledged at its
 * resolution: an outage's length became a "time to acknowledge".
 *
 * How an operator's resolution is told from an automatic one: by its outcome. The API requires
 * one on every operator resolve (routes/alerts.ts) and the automatic paths never set one, so a
 * resolved alert with outcome NULL was closed by the system. Each transition row carries the
 * alert's outcome after the change (migration 2), so the resolution row of the audit trail says
 * it too, and the continuous aggregate can read it. The `actor` column cannot: an operator's
 * actor is their token's free-text name, and the `gateway:` / `system:` prefixes are a habit of
 * today's code, not a constraint. Likewise the snapshot's `first_response_at` holds only
 * acknowledge and dispatch times, never a resolution, so it is an operator's by construction.
 *
 * Both views keep their columns (same names, corrected values) and gain new ones at the end,
 * so every query that ran before still runs:
 * - `alert_response_times`: ack_seconds only from an operator's response (acknowledge, dispatch,
 *   or an operator's resolve when they skipped both); resolve_seconds only for an operator's
 *   resolve; new `resolved_by_operator` (NULL until resolved).
 * - `alert_response_hourly`: `resolved` still counts every resolution in the hour; new
 *   `responded` and `resolved_by_operator` count the rows behind ack_seconds_sum and
 *   resolve_seconds_sum, which are the denominators of their means.
 */
export const operatorResponseKpis: Migration = {
  version: 6,
  name: 'response KPIs count operator responses only',
  sql: `
-- Tests, drills and cancelled alerts stay out, as in migration 2. resolved_by_operator_at is the
-- resolution when an operator's (it has an outcome), else NULL: the system's is no response.
CREATE OR REPLACE VIEW alert_response_times AS
SELECT id AS alert_id, zone, kind, device_id, state, outcome, opened_at,
       COALESCE(acknowledged_at, dispatched_at, resolved_by_operator_at) AS first_response_at, resolved_at,
       extract(epoch FROM COALESCE(acknowledged_at, dispatched_at, resolved_by_operator_at) - opened_at)::float8 AS ack_seconds,
       extract(epoch FROM resolved_by_operator_at - opened_at)::float8 AS resolve_seconds,
       CASE WHEN resolved_at IS NOT NULL THEN outcome IS NOT NULL END AS resolved_by_operator
FROM alerts, LATERAL (SELECT CASE WHEN outcome IS NOT NULL THEN resolved_at END AS resolved_by_operator_at) response
WHERE NOT test AND outcome IS DISTINCT FROM 'test' AND state <> 'cancelled';
`,
  async apply (tx) {
    // Replaced as what migration 3 made it: a plain view, or a continuous aggregate.
    if (!await isContinuousAggregate(tx, 'alert_response_hourly')) {
      await tx.query(`CREATE OR REPLACE VIEW alert_response_hourly AS ${responseHourly(plainBucket)}`)
      return
    }
    // A continuous aggregate's query cannot be altered: dropped (its refresh policy with it) and
    // created again as migration 3 did. WITH NO DATA because materializing may not run inside
    // the migration's transaction; until something is materialized, every row is aggregated
    // from the raw trail (materialized_only = false), so the answers are right from the commit.
    await tx.query('DROP MATERIALIZED VIEW alert_response_hourly')
    await tx.query(`CREATE MATERIALIZED VIEW alert_response_hourly
      WITH (timescaledb.continuous, timescaledb.materialized_only = false)
      AS ${responseHourly(timescaleBucket)} WITH NO DATA`)
    await tx.query(`SELECT add_continuous_aggregate_policy('alert_response_hourly', start_offset => INTERVAL '7 days',
      end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')`)
    // The policy materializes only its last 7 days, and once it has run, hours older than that
    // are read from the materialization alone: without this all the older history would drop out
    // of the aggregate. A one-off background job (outside this transaction, right after the
    // commit) materializes all of it, then unschedules itself; should it fail, it is tried again
    // every hour. Until it has run, the hours older than 7 days may be missing for a moment if
    // the policy happens to run first.
    await tx.query(`CREATE PROCEDURE refresh_alert_response_history (job_id integer, config jsonb)
      LANGUAGE plpgsql AS $$
      BEGIN
        CALL refresh_continuous_aggregate('alert_response_hourly', NULL, now() - INTERVAL '1 hour');
        COMMIT;
        PERFORM alter_job(job_id, scheduled => false);
      END
      $$`)
    await tx.query("SELECT add_job('refresh_alert_response_history', INTERVAL '1 hour')")
  }
}

/** As in migration 3: UTC hours, with TimescaleDB's bucket function where it exists. */
const plainBucket = (column: string) => `date_bin(INTERVAL '1 hour', ${column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')`
const timescaleBucket = (column: string) => `time_bucket(INTERVAL '1 hour', ${column})`

/** A resolution row with an operator's response before or at it (see the file comment). */
const RESPONDED = 'first_response_at IS NOT NULL OR outcome IS NOT NULL'
const RESOLVED_BY_OPERATOR = 'outcome IS NOT NULL'

/**
 * Response times of the alerts resolved in each hour, per zone and kind; tests and drills left
 * out. Sums and their own counts, so that longer periods average correctly (sum / count of the
 * same rows). Migration 3's columns first, in its order, so the plain view can be replaced.
 */
function responseHourly (bucket: (column: string) => string): string {
  const ackSeconds = 'extract(epoch FROM COALESCE(first_response_at, at) - opened_at)::float8'
  const resolveSeconds = 'extract(epoch FROM at - opened_at)::float8'
  return `
    SELECT ${bucket('at')} AS bucket, zone, kind,
      count(*) AS resolved,
      sum(${ackSeconds}) FILTER (WHERE ${RESPONDED}) AS ack_seconds_sum,
      max(${ackSeconds}) FILTER (WHERE ${RESPONDED}) AS ack_seconds_max,
      sum(${resolveSeconds}) FILTER (WHERE ${RESOLVED_BY_OPERATOR}) AS resolve_seconds_sum,
      max(${resolveSeconds}) FILTER (WHERE ${RESOLVED_BY_OPERATOR}) AS resolve_seconds_max,
      count(*) FILTER (WHERE ${RESPONDED}) AS responded,
      count(*) FILTER (WHERE ${RESOLVED_BY_OPERATOR}) AS resolved_by_operator
    FROM alert_transitions
    WHERE to_state = 'resolved' AND NOT test AND outcome IS DISTINCT FROM 'test'
    GROUP BY 1, 2, 3`
}
