import pg from 'pg'
import type { Database, Queryable } from './database.js'

const INT8_OID = 20

/** PostgreSQL or TimescaleDB through a `pg` connection pool. */
export async function openPostgres (connectionString: string): Promise<Database> {
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    // int8 as number (ids, counts, seq stay far below 2^53), for this pool only.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser
    }
  })
  // A dropped idle connection (server restart, pg_terminate_backend) must not crash the process;
  // the pool replaces it on the next query.
  pool.on('error', () => {})
  await pool.query('SELECT 1')
  const asQueryable = (q: pg.Pool | pg.PoolClient): Queryable => ({
    async query<Row>(sql: string, params?: unknown[]) {
      const result = await q.query(sql, params)
      return result.rows as Row[]
    }
  })
  return {
    engine: 'postgres',
    ...asQueryable(pool),
    async transaction (fn) {
      const client = await pool.connect()
      // A checked-out client whose backend is terminated (pg_terminate_backend, a database
      // restart) emits 'error'; unheard, that would crash the process. The failing query
      // rejects anyway, so the transaction fails and the caller retries.
      let broken: Error | undefined
      const onError = (err: Error) => { broken = err }
      client.on('error', onError)
      try {
        await client.query('BEGIN')
        const result = await fn(asQueryable(client))
        await client.query('COMMIT')
        return result
      } catch (err) {
        if (!broken) await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.off('error', onError)
        // A broken connection is destroyed rather than handed to the next caller.
        client.release(broken ?? false)
      }
    },
    exec: async (sql) => { await pool.query(sql) },
    close: () => pool.end()
  }
}
