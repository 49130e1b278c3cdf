import type { Migration } from '../migrations.js'

/**
 * Version 7: webhook deliveries kept in the database (escalation/webhooks.ts). A delivery is
 * queued in the same transaction as the escalation it announces and forgotten only once a
 * receiver took it or it was given up, so a server restart or a receiver away for a while
 * delays an escalation's notice but does not lose it. `next_attempt_at` is also the lease of
 * the instance sending it: while an attempt runs it lies in the future, so another server
 * instance does not send the same delivery meanwhile.
 */
export const webhookDeliveries: Migration = {
  version: 7,
  name: 'webhook deliveries',
  sql: `
CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  url              text NOT NULL,
  event_type       text NOT NULL,
  -- The exact bytes signed and sent, the same on every attempt.
  body             text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  delivered_at     timestamptz,
  given_up_at      timestamptz
);
CREATE INDEX webhook_deliveries_waiting ON webhook_deliveries (next_attempt_at, id) WHERE delivered_at IS NULL AND given_up_at IS NULL;
`
}
