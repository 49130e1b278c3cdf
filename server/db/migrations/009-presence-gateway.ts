import type { Migration } from '../migrations.js'

/**
 * Version 9: which gateway reported a device's presence (ingest/presence.ts). A device that
 * moves to another gateway (a reconnect through a load balancer, a gateway upgraded or failed
 * over) is reported online by the new one, then, a keepalive or a heartbeat interval later,
 * offline by the one it left: that late `offline` opened a `device_offline` alert the device,
 * online all along, never resolved. Now an `offline` from a gateway other than the one that
 * reported the device online is a report about a connection the device no longer uses.
 */
export const presenceGateway: Migration = {
  version: 9,
  name: 'the gateway that reported presence',
  sql: `
ALTER TABLE devices ADD COLUMN presence_gateway_id text;
`
}
