/**
 * A late alarm is compared with its device's alerts closed after it, in the statement that
 * raises it (ingest/late-causes.ts). On a database holding months of alerts that must be an
 * index lookup by device (migration 13), not a read of the alerts table under the batch's
 * device locks. Runs on every engine: embedded PGlite, TimescaleDB (its PGlite build), and
 * PostgreSQL when TEST_DATABASE_URL is set.
 */
import { describe, expect, it } from 'vitest'
import { migrate } from '../../server/db/migrate.js'
import { causeRecords, causesJson, raiseFromCauses, type AlertCause } from '../../server/ingest/raise-alert.js'
import { databaseBackends } from '../helpers/postgres.js'

const DEVICES = 200
const ALERTS_PER_DEVICE = 50

describe.each(databaseBackends)('late alarms against a long history on $name', (backend) => {
  it('finds the closings a late press is compared with through the index by device and closing time', async () => {
    const { db, dispose } = await backend.open()
    try {
      await migrate(db)
      // 10 000 alerts, one every 6 hours per device (12 days), each resolved 10 minutes after it opened.
      await db.query(`INSERT INTO devices (id, kind, name, zone, secret_hash)
        SELECT 'dev-' || i, 'button', 'Device ' || i, 'zone-a', 'x' FROM generate_series(1, $1::integer) i`, [DEVICES])
      await db.query(`INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, last_press_at, resolved_at)
        SELECT 'alert-' || d || '-' || n, 'dev-' || d, 'panic', 'resolved', 'zone-a', now() - n * INTERVAL '6 hours',
               now() - n * INTERVAL '6 hours', now() - n * INTERVAL '6 hours' + INTERVAL '10 minutes'
        FROM generate_series(1, $1::integer) d, generate_series(1, $2::integer) n`, [DEVICES, ALERTS_PER_DEVICE])
      await db.query('ANALYZE alerts')
      const now = Date.now()
      const late: AlertCause = { deviceId: 'dev-7', kind: 'panic', atMs: now - 300_000, eventId: 'dev-7/-/2', actor: 'device:dev-7', redateAtMs: now }
      // The raising statement as raiseAlerts sends it (storeEvents holds the same CTEs).
      const plan = (await db.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN WITH causes AS (SELECT * FROM ${causeRecords('$1')}), ${raiseFromCauses([late])} SELECT alert_id FROM raised`,
        [causesJson([late])])).map((row) => row['QUERY PLAN']).join('\n')
      const closings = plan.slice(plan.indexOf('CTE closings'), plan.indexOf('CTE placed'))
      expect(closings).toMatch(/Index (Only )?Scan (using|on) alerts_device_closing/)
      expect(plan).not.toMatch(/Seq Scan on alerts/)
    } finally {
      await dispose()
    }
  }, 120_000)
})
