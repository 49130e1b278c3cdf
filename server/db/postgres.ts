import pg from 'pg'
import type { Database, TransactionOptions } from './database.js'
import { PoolConnections } from './pg-connections.js'

export { QueryDeadlineExceeded } from './pg-connections.js'

const INT8_OID = 20

/**
 * How long the pool waits for PostgreSQL before it takes a connection for dead. A connection can
 * go half-open (the database host lost power, a failover moved its address, a NAT or firewall
 * dropped the flow): a query on it then never answers and never fails, and whatever waits for it
 * (an escalation pass) waits forever. These bound every wait; `long` transactions (migrations)
 * lift the per-query ones.
 */
export interface PostgresTimeouts {
  /**
   * Client side: a query not answered within this long fails, and its connection is destroyed
   * rather than handed to the next caller (20 s). Long enough for any query of ours done right:
   * an ingest batch takes milliseconds (p99 about 0.2 s at 10 000 events/s in the bench) and its
   * gateway gives up on it after 30 s anyway; the API's reads are paged and indexed; the
   * escalator's pass is one small transaction. No longer than need be: every query in flight
   * when the path died waits this long, and while dead connections fill the pool, callers wait
   * for one. Only those in flight pay it: idle connections as old are not trusted after the
   * first is found dead (pg-connections.ts). Migrations are free of it (`long`).
   */
  queryDeadlineMs: number
  /**
   * Server side (`statement_timeout`, 15 s), shorter than the client's deadline: a statement
   * that is merely slow (a lock held too long, a runaway read) is cancelled by the server first,
   * with an ordinary error on a connection that stays usable; and one whose client vanished
   * stops holding its locks instead of running on.
   */
  statementTimeoutMs: number
  /**
   * Server side (`idle_in_transaction_session_timeout`, 15 s): a transaction left open and idle
   * ends. Ours never wait between statements but for our own code (milliseconds), so such a session
   * is one whose client vanished mid-transaction; until it ends, the rows it locked (an alert
   * the escalator must escalate) stay locked, for the hours the server's TCP keepalive would
   * otherwise take to notice.
   */
  idleInTransactionMs: number
  /**
   * Opening a connection, or waiting for a free one (10 s): a database that does not answer a
   * connect (a blackholed SYN waits minutes for the OS to give up) fails the caller, who
   * retries, instead of queueing every caller behind it.
   */
  connectMs: number
  /**
   * TCP keepalive probes after this much silence, so a dead peer under an idle connection is
   * noticed (how soon after depends on the OS's probe settings) and the connection leaves the
   * pool. They cannot catch a connection with a query in flight whose bytes something on the
   * path still acknowledges: the query deadline does.
   */
  keepAliveAfterMs: number
}

export const POSTGRES_TIMEOUTS: Readonly<PostgresTimeouts> = Object.freeze({
  queryDeadlineMs: 20_000,
  statementTimeoutMs: 15_000,
  idleInTransactionMs: 15_000,
  connectMs: 10_000,
  keepAliveAfterMs: 10_000
})

/** Connections for requests and ingest; the background loops have `LOOP_CONNECTIONS` of their own. */
const POOL_CONNECTIONS = 10
/**
 * The escalator, the webhook sender and the gateway watch query through a pool of their own:
 * sharing one, an escalation pass queued behind ingest and API reads for a free connection, and
 * after an outage (a backlog of batches, exactly when panics wait unacknowledged) its waits ran
 * past the connect limit pass after pass: no escalation while the backlog lasted.
 */
const LOOP_CONNECTIONS = 2

/** PostgreSQL or TimescaleDB through `pg` connection pools (one for requests, one for the background loops). */
export async function openPostgres (connectionString: string, timeouts: Partial<PostgresTimeouts> = {}): Promise<Database> {
  const limits = { ...POSTGRES_TIMEOUTS, ...timeouts }
  const main = poolDatabase(connectionString, limits, POOL_CONNECTIONS)
  await main.query('SELECT 1')
  const loops = poolDatabase(connectionString, limits, LOOP_CONNECTIONS)
  return {
    ...main,
    loops,
    close: async () => { await Promise.all([main.close(), loops.close()]) },
    listen: (channel, onNotification, onListening, onTrouble) => listenOn(connectionString, channel, onNotification, onListening, onTrouble)
  }
}

/** A `Database` over a pool of `max` connections, each query against the deadlines. */
function poolDatabase (connectionString: string, limits: PostgresTimeouts, max: number): Database {
  const pool = new pg.Pool({
    connectionString,
    max,
    keepAlive: true,
    keepAliveInitialDelayMillis: limits.keepAliveAfterMs,
    connectionTimeoutMillis: limits.connectMs,
    statement_timeout: limits.statementTimeoutMs,
    idle_in_transaction_session_timeout: limits.idleInTransactionMs,
    // int8 as number (ids, counts, seq stay far below 2^53), for this pool only.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser
    }
  })
  // A dropped idle connection (server restart, pg_terminate_backend) must not crash the process;
  // the pool replaces it on the next query.
  pool.on('error', () => {})
  const connections = new PoolConnections(pool)
  const query = <Row>(sql: string, params?: unknown[]) =>
    connections.run(limits.queryDeadlineMs, (connection) => connection.query<Row>(sql, params))
  return {
    engine: 'postgres',
    query,
    async transaction (fn, options?: TransactionOptions) {
      // A long one (migrations) has no deadline: cut short, it would be tried again at the next
      // start and cut again. A dead connection under it is left to TCP keepalive.
      return connections.run(options?.long ? undefined : limits.queryDeadlineMs, async (connection, broken) => {
        await connection.query('BEGIN')
        try {
          if (options?.long) await connection.query('SET LOCAL statement_timeout = 0')
          const result = await fn(connection)
          await connection.query('COMMIT')
          return result
        } catch (err) {
          if (!broken()) await connection.query('ROLLBACK').catch(() => {})
          throw err
        }
      })
    },
    exec: async (sql) => { await query(sql) },
    close: () => pool.end()
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
    // One ping at a time: a second one sent while the first waits would queue behind it on
    // the connection (pg@9 refuses that outright, and the refusal would read as a drop).
    let pinging = false
    ping = setInterval(() => {
      if (pinging) return
      pinging = true
      next.query('SELECT 1').catch(drop).finally(() => { pinging = false })
    }, PING_MS)
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
