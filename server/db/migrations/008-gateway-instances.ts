import type { Migration } from '../migrations.js'

/**
 * Version 8: which running gateway process calls under each gateway id (supervision/gateway-watch.ts).
 * Two gateways configured with one GATEWAY_ID (a cloned SD card keeps its host name, the
 * default id) look like one gateway to the watch: while either calls, the other's loss goes
 * unseen, and every device behind it silent. Each gateway process names itself with a random
 * instance id; the server keeps the current and the previous one, and a call from the previous
 * one soon after it was replaced (A, B, A: two processes calling by turns, which a restart never
 * does) marks the id as shared.
 */
export const gatewayInstances: Migration = {
  version: 8,
  name: 'gateway instances',
  sql: `
ALTER TABLE gateways ADD COLUMN instance_id text;
ALTER TABLE gateways ADD COLUMN previous_instance_id text;
ALTER TABLE gateways ADD COLUMN instance_changed_at timestamptz;
ALTER TABLE gateways ADD COLUMN shared_seen_at timestamptz;
`
}
