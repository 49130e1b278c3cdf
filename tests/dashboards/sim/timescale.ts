/**
 * The server's storage on TimescaleDB for the dashboard tests: the tests-only TimescaleDB build
 * of PGlite (tests/helpers/postgres.ts) with the server's own migrations applied.
 */
import type { Database } from '../../../server/db/database.js'
import { migrate } from '../../../server/db/migrate.js'
import { openTimescalePglite } from '../../helpers/postgres.js'

export async function openTimescaleDatabase (): Promise<Database> {
  const db = await openTimescalePglite()
  await migrate(db)
  const [row] = await db.query<{ extversion: string }>("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
  if (!row) throw new Error('the TimescaleDB extension is not installed: the migrations did not enable it')
  return db
}
