import type { Migration } from '../migrations.js'

/**
 * Version 11: the key server instances sign their bus messages with (bus-bridge.ts). Anyone who
 * can connect to the database can NOTIFY, and no privilege takes that away; the key lives in a
 * schema of its own, which no role but the owner may read (Grafana's login reads `public` only).
 */
export const busKey: Migration = {
  version: 11,
  name: 'a key for the server instances\' bus',
  sql: `
CREATE SCHEMA IF NOT EXISTS sos_internal;
REVOKE ALL ON SCHEMA sos_internal FROM PUBLIC;
CREATE TABLE sos_internal.secrets (
  name   text PRIMARY KEY,
  value  text NOT NULL
);
INSERT INTO sos_internal.secrets (name, value)
  VALUES ('bus', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
`
}
