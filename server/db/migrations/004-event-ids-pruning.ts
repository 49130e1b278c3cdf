import type { Migration } from '../migrations.js'

/**
 * Version 4: event ids are forgotten once their events are. `event_ids` (the idempotency keys)
 * grew forever while TimescaleDB dropped the events themselves after the retention period.
 * A BRIN index finds the old ids for almost no cost per insert (ids arrive in time order), and
 * `prune_event_ids` deletes those older than `config.keep`; applyStoragePolicies schedules it as
 * a TimescaleDB job next to the retention policy. Without TimescaleDB nothing is dropped, so
 * nothing is pruned.
 */
export const eventIdsPruning: Migration = {
  version: 4,
  name: 'event ids pruned with the events they guard',
  sql: `
CREATE INDEX event_ids_received ON event_ids USING brin (received_at);
`,
  // One statement: the migration runner splits `sql` at line-ending semicolons, which a
  // procedure body has.
  async apply (tx) {
    await tx.query(`CREATE PROCEDURE prune_event_ids (job_id integer, config jsonb)
      LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM event_ids WHERE received_at < now() - (config->>'keep')::interval;
      END
      $$`)
  }
}
