import type { Migration } from '../migrations.js'

/**
 * Version 7: webhook deliveries kept in the database (escalation/webhooks.ts). A delivery is
 * queued in the same transaction as the escalation it announces and forgotten only once a
 * receiver took it or it was given up, so a server restart or a receiver away for a while
 * delays an escalation's notice but does not lose it. While an attempt runs, `next_attempt_at`
 * lies in the future (the lease of the instance sending it, so no other sends it meanwhile) and
 * `claim` names that attempt: only its own outcome is recorded, never one whose lease ran out.
 */
export const webhookDeliveries: Migration = {
  version: 7,
  name: 'webhook deliveries',
  sql: `
CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  url              text NOT NULL,
  event_type       text NOT NULL,
  -- The notice as JSON ({id, type, queuedAt, data}); each attempt sends it with its own sentAt.
  notice           text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  claim            text,
  last_error       text,
  delivered_at     timestamptz,
  given_up_at      timestamptz
);
CREATE INDEX webhook_deliveries_waiting ON webhook_deliveries (next_attempt_at, id) WHERE delivered_at IS NULL AND given_up_at IS NULL;
`
}
