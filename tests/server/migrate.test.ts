/**
 * Migrating in the conditions a deployment meets, beyond a fresh start: servers starting
 * together on a fresh PostgreSQL, and TimescaleDB arriving after the schema was made.
 */
import { describe, expect, it } from 'vitest'
import type { Database, Queryable } from '../../server/db/database.js'
import { migrate } from '../../server/db/migrate.js'
import { migrations } from '../../server/db/migrations.js'
import { openPostgres } from '../../server/db/postgres.js'
import { applyStoragePolicies } from '../../server/db/timescale.js'
import { createTestDatabase, openTimescalePglite, testDatabaseUrl } from '../helpers/postgres.js'

describe('migrations', () => {
  it.skipIf(!testDatabaseUrl)('lets servers that start together on a fresh PostgreSQL both come up', async () => {
    // CREATE TABLE IF NOT EXISTS is not safe against itself: one of two failed, every time.
    for (let run = 0; run < 3; run++) {
      const created = await createTestDatabase()
      const servers = await Promise.all([openPostgres(created.url), openPostgres(created.url)])
      try {
        // Both come up; between them, every migration applied once (each takes its turn).
        const applied = await Promise.all(servers.map((db) => migrate(db)))
        expect(applied.flat().sort((a, b) => a - b)).toEqual(migrations.map((m) => m.version))
      } finally {
        await Promise.all(servers.map((db) => db.close()))
        await created.drop()
      }
    }
  })

  it('starts on a database that got TimescaleDB after its schema, with no storage policy rather than not at all', async () => {
    const db = await openTimescalePglite()
    try {
      // Migrated as on plain PostgreSQL (the extension not offered then): events is a plain table.
      const hide = (q: Queryable): Queryable => ({ ...q, query: (sql, params) => /pg_available_extensions/.test(sql) ? Promise.resolve([]) : q.query(sql, params) }) as Queryable
      const plain: Database = { ...db, ...hide(db), transaction: (work) => db.transaction((tx) => work(hide(tx))) } as Database
      await migrate(plain)
      await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
      expect(await applyStoragePolicies(db, { compressAfterDays: 7, retentionDays: 365 })).toBe('events-not-hypertable')
    } finally {
      await db.close()
    }
  })
})
