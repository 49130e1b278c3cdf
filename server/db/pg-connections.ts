/**
 * Connections of the `pg` pool, each query on them against a deadline (postgres.ts says why
 * and how long). A connection can go half-open: the database host lost power, a failover moved
 * its address, a NAT or firewall dropped the flow. A query on it then never answers and never
 * fails; whatever waits for it (an escalation pass) would wait forever, and the pool would hand
 * the connection to the next caller. Here such a query fails at its deadline, and its
 * connection is destroyed rather than returned.
 */
import type pg from 'pg'
import type { Queryable } from './database.js'

/** A query not answered within the deadline: its connection is taken for dead and destroyed. */
export class QueryDeadlineExceeded extends Error {
  readonly code = 'QUERY_DEADLINE_EXCEEDED'
  constructor (deadlineMs: number) {
    super(`database did not answer within ${deadlineMs} ms: connection taken for dead and closed`)
  }
}

export class PoolConnections {
  /** When each connection opened (monotonic ms). */
  private readonly openedAt = new WeakMap<pg.PoolClient, number>()
  /** When a query last went unanswered past its deadline. */
  private deadFoundAt = -Infinity

  constructor (private readonly pool: pg.Pool) {
    pool.on('connect', (client) => { this.openedAt.set(client as pg.PoolClient, performance.now()) })
  }

  /**
   * Runs `work` on one connection, each of its queries against `deadlineMs` (none: undefined).
   * A connection found dead (a query past the deadline) or broken (its backend terminated: a
   * database restart, pg_terminate_backend; it emits 'error', which unheard would crash the
   * process) fails every query after that at once, and is destroyed on release rather than
   * handed to the next caller, who gets a fresh one.
   */
  async run<T> (deadlineMs: number | undefined, work: (connection: Queryable, broken: () => Error | undefined) => Promise<T>): Promise<T> {
    const client = await this.checkOut()
    let broken: Error | undefined
    const onError = (err: Error) => { broken ??= err }
    client.on('error', onError)
    const connection: Queryable = {
      query: async <Row>(sql: string, params?: unknown[]) => {
        if (broken) throw broken
        try {
          const result = await answeredWithin(client.query(sql, params), deadlineMs)
          return result.rows as Row[]
        } catch (err) {
          if (err instanceof QueryDeadlineExceeded) {
            broken ??= err
            this.deadFoundAt = performance.now()
          }
          throw err
        }
      }
    }
    try {
      return await work(connection, () => broken)
    } finally {
      client.off('error', onError)
      // With an error the pool ends the client, and pg ends one with a query still in flight by
      // destroying its socket: the dead connection is gone, not merely set aside.
      client.release(broken ?? false)
    }
  }

  /**
   * A connection from the pool, opened after the last one found dead. An older one may have
   * died with it (the path that went down took every flow at once: a flushed NAT table, a
   * failover), and each of the pool's idle dead ones would cost a caller the whole deadline, one
   * after another; so it is closed, and another taken. A healthy one closed so costs a reconnect
   * (milliseconds), and only after a connection was found dead.
   */
  private async checkOut (): Promise<pg.PoolClient> {
    for (;;) {
      const client = await this.pool.connect()
      if ((this.openedAt.get(client) ?? -Infinity) > this.deadFoundAt) return client
      client.release(new Error('opened before a connection was found dead: closed, not trusted'))
    }
  }
}

/** `query`, or QueryDeadlineExceeded once `deadlineMs` has passed without an answer. */
function answeredWithin<R> (query: Promise<R>, deadlineMs: number | undefined): Promise<R> {
  if (deadlineMs === undefined) return query
  // Its late failure (the connection destroyed under it) is no one's to hear.
  query.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new QueryDeadlineExceeded(deadlineMs)), deadlineMs)
  })
  return Promise.race([query, deadline]).finally(() => clearTimeout(timer))
}
