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
    listen: (channel, onNotification, onListening, onTrouble) => listenOn(connectionString, channel, onNotification, onListening, onTrouble)
  }
}

/** Retries a dropped LISTEN connection after this long. */
const RELISTEN_MS = 1000
/** How often a LISTEN connection proves it still answers (a half-open socket tells nothing). */
const PING_MS = 10_000

/**
 * A LISTEN connection outside the pool (a pooled one would be handed to queries), named in
 * pg_stat_activity, asked a trivial query every 10 s (one unanswered within 5 s counts as a
 * drop), and opened again a second after it drops for as long as it is not closed.
 */
async function listenOn (connectionString: string, channel: string, onNotification: (payload: string) => void,
  onListening: (afterDrop: boolean) => void, onTrouble: (err: Error) => void): Promise<{ close(): Promise<void> }> {
  let client: pg.Client | undefined
  let closed = false
  let retry: NodeJS.Timeout | undefined
  let ping: NodeJS.Timeout | undefined
  const again = () => { if (!closed) retry = setTimeout(() => { void connect(true) }, RELISTEN_MS) }
  const connect = async (afterDrop: boolean): Promise<void> => {
    const next = new pg.Client({ connectionString, application_name: 'sos-bus-listener', keepAlive: true, query_timeout: 5000 })
    next.on('notification', (message) => { if (message.channel === channel) onNotification(message.payload ?? '') })
    let dropped = false
    const drop = (err: Error) => {
      if (dropped) return
      dropped = true
      next.end().catch(() => {})
      if (closed || client !== next) return
      client = undefined
      clearInterval(ping)
      onTrouble(err)
      again()
    }
    next.on('error', drop)
    next.on('end', () => drop(new Error('connection ended')))
    try {
      await next.connect()
      await next.query(`LISTEN "${channel.replace(/"/g, '""')}"`)
    } catch (err) {
      dropped = true
      await next.end().catch(() => {})
      if (!afterDrop) throw err
      onTrouble(err as Error)
      again()
      return
    }
    if (closed) { dropped = true; await next.end().catch(() => {}); return }
    client = next
    ping = setInterval(() => { next.query('SELECT 1').catch(drop) }, PING_MS)
    ping.unref()
    onListening(afterDrop)
  }
  await connect(false)
  return {
    async close () {
      closed = true
      clearTimeout(retry)
      clearInterval(ping)
      const last = client
      client = undefined
      if (last) await last.end().catch(() => {})
    }
  }
}
