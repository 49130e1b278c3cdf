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
  return wrapPglite(pg)
}

interface PgliteQueryable {
  query<Row>(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>
}

/** What `wrapPglite` needs of a PGlite instance (structural, so other PGlite builds fit too). */
export interface PgliteLike extends PgliteQueryable {
  transaction<T>(fn: (tx: PgliteQueryable) => Promise<T>): Promise<T>
  exec(sql: string): Promise<unknown>
  close(): Promise<void>
}

/** One PGlite instance as our `Database`. Tests also wrap the TimescaleDB build of PGlite with it. */
export function wrapPglite (pg: PgliteLike): Database {
  const asQueryable = (q: PgliteQueryable): Queryable => ({
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
