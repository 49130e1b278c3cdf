import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite, types } from '@electric-sql/pglite'
import type { Database, Queryable } from './database.js'

/** Embedded PostgreSQL (WASM) under `{dataDir}/pglite`: the zero-setup default. */
export async function openPglite (dataDir: string): Promise<Database> {
  const dir = join(dataDir, 'pglite')
  mkdirSync(dir, { recursive: true })
  // int8 as number, like the pg driver is configured: ids and counts stay far below 2^53.
  const pg = await PGlite.create(dir, { parsers: { [types.INT8]: (value: string) => Number(value) } })
  const asQueryable = (q: Pick<PGlite, 'query'>): Queryable => ({
    async query<Row>(sql: string, params?: unknown[]) {
      const result = await q.query<Row>(sql, params as unknown[] | undefined)
      return result.rows
    }
  })
  return {
    engine: 'pglite',
    ...asQueryable(pg),
    transaction: (fn) => pg.transaction((tx) => fn(asQueryable(tx))),
    exec: async (sql) => { await pg.exec(sql) },
    close: () => pg.close()
  }
}
