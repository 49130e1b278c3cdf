import type { Migration } from '../migrations.js'

/**
 * Version 2: what the alert lifecycle and the operator API need beyond the foundation —
 * device presence, escalation, heartbeat gaps, resident reports, announcements, dead letters,
 * cancel attempts — and the alert snapshot on each transition that the dashboards aggregate.
 * Its `alert_response_times` view took an automatic resolution (a device back online) for an
 * operator's response; migration 6 replaces it with one that counts operators only.
 */
export const reportsAnnouncementsDeadLetters: Migration = {
  version: 2,
  name: 'presence, escalation, gaps, transition snapshots, reports, announcements, dead letters, cancel attempts',
  sql: `
-- Presence as a gateway last reported it (connection, last will, missed heartbeats).
-- NULL = never reported: the API then judges by last_seen_at alone.
ALTER TABLE devices ADD COLUMN online boolean;
ALTER TABLE devices ADD COLUMN presence_at timestamptz;
ALTER TABLE devices ADD COLUMN presence_reason text;

-- Escalation: level n = escalated n times; the next one is due at opened_at + (n + 1) × interval.
ALTER TABLE alerts ADD COLUMN escalation_level integer NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN escalated_at timestamptz;
CREATE INDEX alerts_open_panic ON alerts (opened_at) WHERE state = 'open' AND kind = 'panic';

-- Time since the device's previous event, computed at ingest, so "gaps per device and hour"
-- is a plain aggregate (a continuous aggregate cannot use window functions).
ALTER TABLE events ADD COLUMN gap_ms bigint;

-- Each transition row carries a snapshot of its alert after the change (zone, kind, test flag,
-- outcome, opened and first-response times). The trail stays append-only, and dashboards can
-- aggregate it directly: on TimescaleDB it becomes the hypertable that the alert continuous
-- aggregates read (a continuous aggregate needs a hypertable source; the mutable alerts table
-- cannot be one because its primary key does not contain a time column).
ALTER TABLE alert_transitions ADD COLUMN device_id text;
ALTER TABLE alert_transitions ADD COLUMN zone text;
ALTER TABLE alert_transitions ADD COLUMN kind text;
ALTER TABLE alert_transitions ADD COLUMN test boolean;
ALTER TABLE alert_transitions ADD COLUMN outcome text;
ALTER TABLE alert_transitions ADD COLUMN opened_at timestamptz;
ALTER TABLE alert_transitions ADD COLUMN first_response_at timestamptz;
UPDATE alert_transitions t SET device_id = a.device_id, zone = a.zone, kind = a.kind, test = a.test,
  outcome = a.outcome, opened_at = a.opened_at, first_response_at = COALESCE(a.acknowledged_at, a.dispatched_at)
  FROM alerts a WHERE a.id = t.alert_id;
ALTER TABLE alert_transitions ALTER COLUMN device_id SET NOT NULL;
ALTER TABLE alert_transitions ALTER COLUMN zone SET NOT NULL;
ALTER TABLE alert_transitions ALTER COLUMN kind SET NOT NULL;
ALTER TABLE alert_transitions ALTER COLUMN test SET NOT NULL;
ALTER TABLE alert_transitions ALTER COLUMN opened_at SET NOT NULL;
-- A hypertable's unique keys must contain its time column.
ALTER TABLE alert_transitions DROP CONSTRAINT alert_transitions_pkey;
ALTER TABLE alert_transitions ADD PRIMARY KEY (id, at);
CREATE INDEX alert_transitions_at ON alert_transitions (at DESC);

-- Resident reports from kiosks: their own queue, never mixed into emergency KPIs.
-- The id is the ticket a resident quotes (R-7K3Q); one report per event id.
CREATE TABLE reports (
  id          text PRIMARY KEY,
  event_id    text NOT NULL UNIQUE,
  device_id   text NOT NULL REFERENCES devices (id),
  zone        text NOT NULL,
  category    text NOT NULL,
  text        text NOT NULL,
  state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
  created_at  timestamptz NOT NULL,
  closed_at   timestamptz,
  closed_by   text,
  note        text
);
CREATE INDEX reports_state_created ON reports (state, created_at DESC);
CREATE INDEX reports_zone_created ON reports (zone, created_at DESC);

-- Ward announcements to the kiosks of a zone (delivered as a retained downlink message).
CREATE TABLE announcements (
  id          text PRIMARY KEY,
  zone        text NOT NULL,
  title       text NOT NULL,
  body        text NOT NULL,
  lang        text NOT NULL,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL
);
CREATE INDEX announcements_zone_created ON announcements (zone, created_at DESC);

-- Publishes a gateway refused (malformed, oversized), kept with the reason.
-- The unique index makes a resent batch store each one once.
CREATE TABLE dead_letters (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  gateway_id   text NOT NULL,
  device_id    text,
  topic        text NOT NULL,
  reason       text NOT NULL,
  payload      text NOT NULL,
  received_at  timestamptz NOT NULL,
  stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dead_letters_once ON dead_letters (gateway_id, received_at, topic, md5(payload));
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

-- Every device cancel, accepted or not (a wrong PIN changes nothing but is kept: repeated
-- wrong PINs on a counter device are themselves worth a look). Keyed by event id, so a
-- redelivered cancel gets the same answer.
CREATE TABLE cancel_attempts (
  event_id  text PRIMARY KEY,
  device_id text NOT NULL,
  alert_id  text,
  at        timestamptz NOT NULL,
  result    text NOT NULL CHECK (result IN ('cancelled', 'wrong_pin', 'window_closed', 'no_alert', 'no_pin')),
  reason    text
);
CREATE INDEX cancel_attempts_device ON cancel_attempts (device_id, at DESC);

-- Response KPIs per alert, for dashboards and the API (works on every engine).
-- Excluded: alerts raised by tests, drills (resolved with outcome 'test'), and cancelled alerts.
-- ack_seconds is the time to the first operator response (acknowledge, or dispatch/resolve
-- when the operator skipped acknowledging); resolve_seconds is NULL until resolved.
-- Per zone: SELECT zone, kind, count(*), avg(ack_seconds), avg(resolve_seconds)
--           FROM alert_response_times WHERE opened_at >= $from GROUP BY zone, kind;
CREATE VIEW alert_response_times AS
SELECT id AS alert_id, zone, kind, device_id, state, outcome, opened_at,
       COALESCE(acknowledged_at, dispatched_at, resolved_at) AS first_response_at, resolved_at,
       extract(epoch FROM COALESCE(acknowledged_at, dispatched_at, resolved_at) - opened_at)::float8 AS ack_seconds,
       extract(epoch FROM resolved_at - opened_at)::float8 AS resolve_seconds
FROM alerts
WHERE NOT test AND outcome IS DISTINCT FROM 'test' AND state <> 'cancelled';
`
}
