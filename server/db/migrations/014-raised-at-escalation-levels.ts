import type { Migration } from '../migrations.js'
import type { Queryable } from '../database.js'
import { isContinuousAggregate } from '../timescale.js'

/**
 * Version 14: operators are measured from when an alert reached them, and escalations say their
 * level in a column.
 *
 * `alerts.raised_at`: the server's clock when the alert was created, never moved. `opened_at` is
 * the first press as its gateway received it, which can lie long before the server heard of it
 * (a press held in a gateway's outbox), and moves back when an earlier press arrives late
 * (ingest/raise-alert.ts). Measured from it, an operator who answered in 30 s a press held 30 min
 * had a 30-min "time to acknowledge", and an alert acknowledged long ago saw its time grow. The
 * response KPIs now count from `raised_at`; the person's wait, from the press (`opened_at`) to
 * the first response, stays beside them as `wait_seconds`: it measures the whole system.
 * The column's DEFAULT sets it on every insert, so no writer changes. Alerts already stored take
 * the time of their opening transition: `opened_at` as it was when the alert was created, before
 * any late press moved it (the nearest the trail knows; else `opened_at`).
 *
 * `alert_transitions.raised_at`: the snapshot of it on each transition row, which the hourly
 * aggregate reads (it cannot read the mutable alerts table). The writers (alerts/transitions.ts,
 * ingest/raise-alert.ts) list their columns; a trigger fills it from the alert when they leave it
 * out, or with the statement's time for an alert created by the same statement (whose raised_at
 * is that same time).
 *
 * `alert_transitions.level`: the escalation level an escalation reached (escalation/escalator.ts).
 * It was only in the note ("escalated to level N: ..."), which the dashboard parsed; one pass can
 * jump several levels after the escalator catches up, so the levels reached are level minus the
 * previous one. Existing escalations are read from their note. `alert_transitions` is a
 * hypertable on TimescaleDB, not compressed (migration 3): plain column additions and updates.
 */
export const raisedAtEscalationLevels: Migration = {
  version: 14,
  name: 'alerts raised at (server clock), escalation levels in the trail',
  sql: `
ALTER TABLE alerts ADD COLUMN raised_at timestamptz;
UPDATE alerts a SET raised_at = COALESCE(
  (SELECT min(t.at) FROM alert_transitions t WHERE t.alert_id = a.id AND t.from_state IS NULL), a.opened_at);
-- clock_timestamp(), not now(): now() is when the transaction began, and a batch may wait for
-- its devices' locks (up to the statement timeout) before its alert exists.
ALTER TABLE alerts ALTER COLUMN raised_at SET DEFAULT clock_timestamp();
ALTER TABLE alerts ALTER COLUMN raised_at SET NOT NULL;

ALTER TABLE alert_transitions ADD COLUMN raised_at timestamptz;
-- integer, as alerts.escalation_level: the level has no cap (an alert open for weeks, or a press
-- held in an outbox for as long, is far past 32 767 at a short ESCALATE_AFTER), and a value the
-- column refused failed the escalator's whole pass, every other alert's escalation with it.
ALTER TABLE alert_transitions ADD COLUMN level integer;
UPDATE alert_transitions t SET raised_at = a.raised_at,
  level = CASE WHEN t.from_state = 'open' AND t.to_state = 'open' THEN LEAST(substring(t.note FROM '^escalated to level ([0-9]+)')::numeric, 2147483647)::integer END
  FROM alerts a WHERE a.id = t.alert_id;
ALTER TABLE alert_transitions ALTER COLUMN raised_at SET NOT NULL;

-- Operators' KPIs from raised_at; the person's wait (press to first response) apart. Migration
-- 6's columns first, in its order (the view is replaced, not dropped), then the new ones.
CREATE OR REPLACE VIEW alert_response_times AS
SELECT id AS alert_id, zone, kind, device_id, state, outcome, opened_at,
       COALESCE(acknowledged_at, dispatched_at, resolved_by_operator_at) AS first_response_at, resolved_at,
       extract(epoch FROM COALESCE(acknowledged_at, dispatched_at, resolved_by_operator_at) - raised_at)::float8 AS ack_seconds,
       extract(epoch FROM resolved_by_operator_at - raised_at)::float8 AS resolve_seconds,
       CASE WHEN resolved_at IS NOT NULL THEN outcome IS NOT NULL END AS resolved_by_operator,
       raised_at,
       extract(epoch FROM COALESCE(acknowledged_at, dispatched_at, resolved_by_operator_at) - opened_at)::float8 AS wait_seconds
FROM alerts, LATERAL (SELECT CASE WHEN outcome IS NOT NULL THEN resolved_at END AS resolved_by_operator_at) response
WHERE NOT test AND outcome IS DISTINCT FROM 'test' AND state <> 'cancelled';
`,
  async apply (tx) {
    await tx.query(`CREATE FUNCTION alert_transitions_raised_at () RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.raised_at IS NULL THEN
          -- Not found: the alert is new in the statement that writes this row (ingest's opening
          -- transition), and its raised_at was taken a moment ago in the same statement.
          NEW.raised_at := COALESCE((SELECT raised_at FROM alerts WHERE id = NEW.alert_id), clock_timestamp());
        END IF;
        RETURN NEW;
      END
      $$`)
    await tx.query(`CREATE TRIGGER alert_transitions_raised_at BEFORE INSERT ON alert_transitions
      FOR EACH ROW EXECUTE FUNCTION alert_transitions_raised_at()`)
    await replaceResponseHourly(tx)
  }
}

/** As in migration 3: UTC hours, with TimescaleDB's bucket function where it exists. */
const plainBucket = (column: string) => `date_bin(INTERVAL '1 hour', ${column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')`
const timescaleBucket = (column: string) => `time_bucket(INTERVAL '1 hour', ${column})`

/** A resolution row with an operator's response before or at it (migration 6). */
const RESPONDED = 'first_response_at IS NOT NULL OR outcome IS NOT NULL'
const RESOLVED_BY_OPERATOR = 'outcome IS NOT NULL'

/**
 * Migration 6's aggregate, its seconds counted from raised_at, with the person's wait (from the
 * press) added at the end: `wait_seconds_sum` over the `responded` rows, and its max.
 */
function responseHourly (bucket: (column: string) => string): string {
  const firstResponse = 'COALESCE(first_response_at, at)'
  const ackSeconds = `extract(epoch FROM ${firstResponse} - raised_at)::float8`
  const resolveSeconds = 'extract(epoch FROM at - raised_at)::float8'
  const waitSeconds = `extract(epoch FROM ${firstResponse} - opened_at)::float8`
  return `
    SELECT ${bucket('at')} AS bucket, zone, kind,
      count(*) AS resolved,
      sum(${ackSeconds}) FILTER (WHERE ${RESPONDED}) AS ack_seconds_sum,
      max(${ackSeconds}) FILTER (WHERE ${RESPONDED}) AS ack_seconds_max,
      sum(${resolveSeconds}) FILTER (WHERE ${RESOLVED_BY_OPERATOR}) AS resolve_seconds_sum,
      max(${resolveSeconds}) FILTER (WHERE ${RESOLVED_BY_OPERATOR}) AS resolve_seconds_max,
      count(*) FILTER (WHERE ${RESPONDED}) AS responded,
      count(*) FILTER (WHERE ${RESOLVED_BY_OPERATOR}) AS resolved_by_operator,
      sum(${waitSeconds}) FILTER (WHERE ${RESPONDED}) AS wait_seconds_sum,
      max(${waitSeconds}) FILTER (WHERE ${RESPONDED}) AS wait_seconds_max
    FROM alert_transitions
    WHERE to_state = 'resolved' AND NOT test AND outcome IS DISTINCT FROM 'test'
    GROUP BY 1, 2, 3`
}

/** Replaced as migration 6 replaced it: a plain view, or a continuous aggregate. */
async function replaceResponseHourly (tx: Queryable): Promise<void> {
  if (!await isContinuousAggregate(tx, 'alert_response_hourly')) {
    await tx.query(`CREATE OR REPLACE VIEW alert_response_hourly AS ${responseHourly(plainBucket)}`)
    return
  }
  // A continuous aggregate's query cannot be altered: dropped (its policy with it) and created
  // again. WITH NO DATA (no materializing inside a transaction): until the policy has run, every
  // hour is aggregated from the raw trail (materialized_only = false). The policy covers the whole
  // history (start_offset NULL: the trail is never dropped), so its first run materializes all of
  // it; applyStoragePolicies sets the same policy again at every start.
  await tx.query('DROP MATERIALIZED VIEW alert_response_hourly')
  await tx.query(`CREATE MATERIALIZED VIEW alert_response_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false)
    AS ${responseHourly(timescaleBucket)} WITH NO DATA`)
  await tx.query(`SELECT add_continuous_aggregate_policy('alert_response_hourly', start_offset => NULL,
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')`)
}
