import type { Migration } from '../migrations.js'

/**
 * Version 5: what the server needs to watch its gateways (supervision/gateway-watch.ts).
 * - `gateways`: each gateway's last call, on the database's clock, so every server instance
 *   behind a load balancer sees the same; and its outbox as it last reported it (how much waits
 *   to be forwarded, whether it is at its bound and shedding routine events).
 * - `devices.gateway_id`: the gateway that forwards the device's events, whose loss leaves it
 *   unsupervised. Filled from each device's newest stored event, so an upgraded server knows
 *   at once (the time bound lets TimescaleDB skip old, compressed chunks).
 * - `devices.heard_at`: when the server last stored one of its events, on the database's
 *   clock: a device heard since an alert opened is back, whatever its gateway's clock says.
 */
export const deviceGateway: Migration = {
  version: 5,
  name: 'gateways and the devices behind them',
  sql: `
CREATE TABLE gateways (
  id                    text PRIMARY KEY,
  last_contact_at       timestamptz NOT NULL,
  outbox_depth          integer,
  outbox_full           boolean,
  outbox_oldest_age_ms  bigint,
  reported_at           timestamptz
);
ALTER TABLE devices ADD COLUMN gateway_id text;
ALTER TABLE devices ADD COLUMN heard_at timestamptz;
CREATE INDEX devices_gateway ON devices (gateway_id);
UPDATE devices d SET gateway_id = (
  SELECT e.gateway_id FROM events e WHERE e.device_id = d.id AND e.time >= d.last_seen_at ORDER BY e.time DESC LIMIT 1);
`
}
