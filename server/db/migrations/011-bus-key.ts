import type { Migration } from '../migrations.js'

/**
 * Version 11: the key server instances sign their bus messages with (bus-bridge.ts). Anyone who
 * can connect to the database can NOTIFY, and no privilege takes that away. The key is readable
 * by the server's own role only: not PUBLIC, and not Grafana's login, which reads every other
 * table of `public` (dashboards/timescaledb-init takes it back there too, should it run later).
 * In `public`, not a schema of its own: a server role that may not create schemas migrates too.
 */
export const busKey: Migration = {
  version: 11,
  name: 'a key for the server instances\' bus',
  sql: `
CREATE TABLE sos_secrets (
  name   text PRIMARY KEY,
  value  text NOT NULL
);
REVOKE ALL ON TABLE sos_secrets FROM PUBLIC;
INSERT INTO sos_secrets (name, value)
  VALUES ('bus', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
`,
  async apply (tx) {
    // Granted SELECT by default privileges as the table was created, if it exists already.
    const reader = await tx.query("SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader'")
    if (reader.length > 0) await tx.query('REVOKE ALL ON TABLE sos_secrets FROM grafana_reader')
  }
}
