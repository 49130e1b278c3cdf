import type { Migration } from '../migrations.js'

/**
 * Version 8: the gateway processes that call under each gateway id (supervision/gateway-watch.ts).
 * Two gateways configured with one GATEWAY_ID (a cloned SD card keeps its host name, the
 * default id) look like one gateway to the watch: while either calls, the other's loss would go
 * unseen, and every device behind it silent. Each gateway process names itself with a random
 * instance id (X-Gateway-Instance); one that called over the same stretch of time as another of
 * its id is a twin, and the id counts as lost as soon as any twin stops calling, so the silent
 * devices behind the dead one are reported. A restart is no twin: the old process stops calling
 * before the new one starts. Rows are forgotten a day after their last call.
 */
export const gatewayInstances: Migration = {
  version: 8,
  name: 'gateway instances',
  sql: `
CREATE TABLE gateway_instances (
  gateway_id        text NOT NULL,
  instance_id       text NOT NULL,
  first_contact_at  timestamptz NOT NULL,
  last_contact_at   timestamptz NOT NULL,
  twin_since        timestamptz,
  PRIMARY KEY (gateway_id, instance_id)
);
`
}
