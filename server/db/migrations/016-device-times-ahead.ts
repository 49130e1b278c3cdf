import type { Migration } from '../migrations.js'

/**
 * Version 16: device times a gateway dated far in the future are put back on the server's clock.
 * Before ingest dated what it derives from such a time by the server's clock
 * (ingest/gateway-clock.ts), one heartbeat through a gateway whose clock said 2099 (or a bug's
 * `receivedAt: 9e15`, past what the API could show) set its device's last seen time there, kept
 * for good by GREATEST; and one presence change so dated made every later one look stale, so the
 * device's going offline was never reported. Each goes back to when the server last heard the
 * device (`heard_at`) or recorded its presence, never later than now; as ingest does, only past
 * two minutes ahead.
 */
export const deviceTimesAhead: Migration = {
  version: 16,
  name: 'device last seen and presence times far in the future put back on the server\'s clock',
  sql: `
UPDATE devices SET last_seen_at = LEAST(COALESCE(heard_at, now()), now())
  WHERE last_seen_at > now() + INTERVAL '2 minutes';
UPDATE devices SET presence_at = LEAST(COALESCE(presence_recorded_at, now()), now())
  WHERE presence_at > now() + INTERVAL '2 minutes';
`
}
