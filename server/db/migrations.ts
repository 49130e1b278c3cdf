/**
 * Versioned schema. Each migration runs once, in order, inside a transaction; the applied
 * versions are kept in `schema_migrations`, so starting the server again is safe.
 * Never edit a migration that has shipped: add the next one.
 */
import type { Database, Queryable } from './database.js'
import { reportsAnnouncementsDeadLetters } from './migrations/002-reports-announcements-dead-letters.js'
import { timescale } from './migrations/003-timescale.js'
import { eventIdsPruning } from './migrations/004-event-ids-pruning.js'
import { deviceGateway } from './migrations/005-device-gateway.js'
import { operatorResponseKpis } from './migrations/006-operator-response-kpis.js'
import { webhookDeliveries } from './migrations/007-webhook-deliveries.js'
import { gatewayInstances } from './migrations/008-gateway-instances.js'
import { presenceGateway } from './migrations/009-presence-gateway.js'
import { earlyCancels } from './migrations/010-early-cancels.js'
import { busKey } from './migrations/011-bus-key.js'
import { presenceRecorded } from './migrations/012-presence-recorded.js'
import { alertsDeviceClosing } from './migrations/013-alerts-device-closing.js'
import { raisedAtEscalationLevels } from './migrations/014-raised-at-escalation-levels.js'
import { deadLettersStored } from './migrations/015-dead-letters-stored.js'
import { deviceTimesAhead } from './migrations/016-device-times-ahead.js'

export interface Migration {
  version: number
  name: string
  /** Plain statements, run in order. */
  sql?: string
  /** Steps that depend on the engine (TimescaleDB or not), run after `sql`, in the same transaction. */
  apply?: (tx: Queryable, context: { engine: Database['engine'] }) => Promise<void>
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'devices, tokens, events, alerts, transitions, downlink',
    sql: `
CREATE TABLE devices (
  id            text PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('button', 'kiosk', 'counter')),
  name          text NOT NULL,
  zone          text NOT NULL,
  lat           double precision,
  lon           double precision,
  silent        boolean NOT NULL DEFAULT false,
  secret_hash   text NOT NULL,
  pin_hash      text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  last_seen_at  timestamptz,
  battery       smallint,
  rssi          smallint,
  fw            text
);
CREATE INDEX devices_zone ON devices (zone);

CREATE TABLE api_tokens (
  id          text PRIMARY KEY,
  role        text NOT NULL CHECK (role IN ('admin', 'operator', 'analyst', 'gateway')),
  name        text NOT NULL,
  token_hash  text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Idempotency: an event id is stored once, whatever the retries. Kept apart from the events
-- table because a hypertable's unique keys must include its time column, and a redelivered
-- event carries a new gateway receive time.
CREATE TABLE event_ids (
  event_id     text PRIMARY KEY,
  received_at  timestamptz NOT NULL
);

-- Every accepted event, heartbeats included. A hypertable on TimescaleDB.
CREATE TABLE events (
  time        timestamptz NOT NULL,
  event_id    text NOT NULL,
  device_id   text NOT NULL,
  boot        text,
  seq         bigint NOT NULL,
  type        text NOT NULL,
  device_ts   timestamptz,
  skew_ms     integer,
  skewed      boolean NOT NULL DEFAULT false,
  battery     smallint,
  rssi        smallint,
  fw          text,
  gateway_id  text NOT NULL,
  data        jsonb
);
CREATE INDEX events_device_time ON events (device_id, time DESC);
CREATE INDEX events_time ON events (time DESC);

CREATE TABLE alerts (
  id               text PRIMARY KEY,
  device_id        text NOT NULL REFERENCES devices (id),
  kind             text NOT NULL CHECK (kind IN ('panic', 'tamper', 'device_offline', 'battery_low', 'power_lost')),
  state            text NOT NULL CHECK (state IN ('open', 'acknowledged', 'dispatched', 'resolved', 'cancelled')),
  zone             text NOT NULL,
  test             boolean NOT NULL DEFAULT false,
  opened_at        timestamptz NOT NULL,
  acknowledged_at  timestamptz,
  dispatched_at    timestamptz,
  resolved_at      timestamptz,
  cancelled_at     timestamptz,
  outcome          text CHECK (outcome IN ('real', 'false_alarm', 'prank', 'accidental', 'test')),
  press_count      integer NOT NULL DEFAULT 1,
  last_press_at    timestamptz NOT NULL,
  last_seq         bigint,
  opened_by_event  text,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
-- At most one active alert per device and kind: further presses coalesce into it.
CREATE UNIQUE INDEX alerts_one_active ON alerts (device_id, kind)
  WHERE state IN ('open', 'acknowledged', 'dispatched');
CREATE INDEX alerts_state_opened ON alerts (state, opened_at DESC);
CREATE INDEX alerts_opened ON alerts (opened_at DESC);

-- The audit trail: every state change of every alert, who, when, why.
CREATE TABLE alert_transitions (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_id    text NOT NULL REFERENCES alerts (id),
  from_state  text,
  to_state    text NOT NULL,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  note        text
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, id);

-- Messages for devices that the gateways publish (acks after 'received', announcements).
-- Durable and numbered, so a gateway that restarts resumes where it stopped.
CREATE TABLE downlink (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic       text NOT NULL,
  payload     jsonb NOT NULL,
  retain      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);
`
  },
  reportsAnnouncementsDeadLetters,
  timescale,
  eventIdsPruning,
  deviceGateway,
  operatorResponseKpis,
  webhookDeliveries,
  gatewayInstances,
  presenceGateway,
  earlyCancels,
  busKey,
  presenceRecorded,
  alertsDeviceClosing,
  raisedAtEscalationLevels,
  deadLettersStored,
  deviceTimesAhead
]
