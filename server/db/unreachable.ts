/**
 * Whether an error says the database could not be reached, that its connection was lost under a
 * query, or that no connection to it came free in time: the state of the database or of the
 * network, not the request's fault nor a bug of ours. A request that fails so is answered 503
 * with Retry-After (plugins/errors.ts): the gateway and the console try again, and the console
 * tells the operator the database is away rather than "Internal Server Error". Such failures
 * are logged as an outage (`outageLines`), a few a minute, not one stack each. (PGlite runs in
 * the process: it is never away.)
 */
import { LogBudget } from '../log-budget.js'
import { QueryDeadlineExceeded } from './pg-connections.js'

/** How the log names such a failure. */
export const UNREACHABLE = 'the database is unreachable or has no free connection'

/**
 * The log lines of an outage: the first three failures of a minute (per key) in full, the rest
 * counted in one line at the minute's end. Every gateway lane and console retries within
 * seconds, and each background loop passes every second or so: a stack each was thousands of
 * lines an hour, all alike, burying what else happened.
 */
export const outageLines = (onHeldBack: (key: string, failures: number) => void) => new LogBudget(3, 60_000, onHeldBack)

/** Node's codes for a connection that could not be made or was cut. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/**
 * SQLSTATEs of a database going away or not taking connections: shut down by an administrator
 * (or pg_terminate_backend), after a crash, still starting or in recovery, out of connection
 * slots; and class 08, connection exceptions, but for 08P01, a protocol violation, which is what
 * a query of ours with the wrong number of parameters gets: a bug, to be logged as one (review 73).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '08007'])

/**
 * What pg and pg-pool say, in words only, of a connection lost or never made; pg-pool's "timeout
 * exceeded when trying to connect" is a caller that waited for a free connection: every one
 * busy, or stuck connecting to a database that does not answer. Either way the request cannot
 * be served now, and another try may be.
 */
const LOST_CONNECTION = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/

export function databaseUnreachable (err: unknown): boolean {
  // The cause of a wrapped error, and each of an AggregateError's (a host name with two
  // addresses, both refusing), a level or two down at most.
  for (const e of [err, (err as { cause?: unknown })?.cause, ...((err as { errors?: unknown[] })?.errors ?? [])]) {
    if (e === null || typeof e !== 'object') continue
    if (e instanceof QueryDeadlineExceeded) return true
    const { code, message } = e as { code?: unknown, message?: unknown }
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code))) return true
    if (typeof message === 'string' && LOST_CONNECTION.test(message)) return true
  }
  return false
}
