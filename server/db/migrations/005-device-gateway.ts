import type { Migration } from '../migrations.js'

/**
 * Version 5: each device remembers the gateway that last forwarded its events, so the server
 * knows whose devices go unsupervised when a gateway is lost (supervision/gateway-watch.ts).
 * Filled from each device's newest stored event, so an upgraded server supervises at once.
 */
export const deviceGateway: Migration = {
  version: 5,
  name: 'devices know their gateway',
  sql: `
ALTER TABLE devices ADD COLUMN gateway_id text;
UPDATE devices d SET gateway_id = (SELECT e.gateway_id FROM events e WHERE e.device_id = d.id ORDER BY e.time DESC LIMIT 1);
`
}
