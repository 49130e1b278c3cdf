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
    close: () => pool.end(),
    listen: (channel, onNotification, onListening) => listenOn(connectionString, channel, onNotification, onListening)
  }
}

/** Retries a dropped LISTEN connection after this long. */
const RELISTEN_MS = 1000

/**
 * A LISTEN connection outside the pool (a pooled one would be handed to queries), named in
 * pg_stat_activity, opened again a second after it drops for as long as it is not closed.
 */
async function listenOn (connectionString: string, channel: string, onNotification: (payload: string) => void, onListening: (afterDrop: boolean) => void): Promise<{ close(): Promise<void> }> {
  let client: pg.Client | undefined
  let closed = false
  let retry: NodeJS.Timeout | undefined
  const connect = async (afterDrop: boolean): Promise<void> => {
    const next = new pg.Client({ connectionString, application_name: 'sos-bus-listener' })
    next.on('notification', (message) => { if (message.channel === channel) onNotification(message.payload ?? '') })
    const dropped = () => {
      next.removeAllListeners('end')
      next.end().catch(() => {})
      if (closed || client !== next) return
      client = undefined
      retry = setTimeout(() => { void connect(true).catch(() => {}) }, RELISTEN_MS)
    }
    next.on('error', dropped)
    next.on('end', dropped)
    try {
      await next.connect()
      await next.query(`LISTEN "${channel.replace(/"/g, '""')}"`)
    } catch (err) {
      next.removeAllListeners('end')
      await next.end().catch(() => {})
      if (!afterDrop) throw err
      if (!closed) retry = setTimeout(() => { void connect(true).catch(() => {}) }, RELISTEN_MS)
      return
    }
    if (closed) { await next.end().catch(() => {}); return }
    client = next
    onListening(afterDrop)
  }
  await connect(false)
  return {
    async close () {
      closed = true
      clearTimeout(retry)
      const last = client
      client = undefined
      if (last) { last.removeAllListeners('end'); await last.end().catch(() => {}) }
    }
  }
}
