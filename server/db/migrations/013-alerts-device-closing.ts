import type { Migration } from '../migrations.js'

/**
 * Version 13: alerts by device and closing time. A late alarm is compared, in the statement
 * that raises it, with its device's alerts active or closed after it (ingest/late-causes.ts);
 * alerts were indexed by opening time and by state only, so each batch carrying one read a
 * day of every device's alerts, under the locks of the batch's devices. An active alert closes
 * at `infinity`, so one range per device finds both. `alerts` is a plain table on every engine
 * (TimescaleDB makes hypertables of `events` and `alert_transitions` only: migration 3), so
 * the index is the same everywhere.
 */
export const alertsDeviceClosing: Migration = {
  version: 13,
  name: 'alerts by device and closing time',
  sql: `
CREATE INDEX alerts_device_closing ON alerts (device_id, (COALESCE(resolved_at, cancelled_at, 'infinity'::timestamptz)));
`
}
