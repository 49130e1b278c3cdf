/**
 * How the gateway retries the server (exponential backoff with full jitter, forever, until
 * stopped), and how it waits with a bound.
 */
import pRetry from 'p-retry'
import type { Logger } from 'pino'
import { ServerError } from './server-client.js'

export function retryForever<T> (what: string, attempt: () => Promise<T>, signal: AbortSignal, log: Logger, onFailure?: () => void): Promise<T> {
  return pRetry(attempt, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 200,
    // Capped low: once the server is back, alarms waiting in the outbox wait at most ~2 s more
    // (one gateway asking every 2 s costs the server nothing). It was 15 s, and after a server
    // restart the backlog waited a median ~5 s for the next attempt.
    maxTimeout: 2_000,
    factor: 2,
    randomize: true,
    signal,
    onFailedAttempt: ({ error, attemptNumber }) => {
      if (signal.aborted) return // stopping, not failing
      onFailure?.()
      // Refused credentials are told once per spell, as an error (server-auth.ts): a warning per
      // retry, from every lane, would bury that line and read like a passing network fault.
      const reportedOnce = error instanceof ServerError && error.refusesCredentials
      const level = !reportedOnce && (attemptNumber === 1 || attemptNumber % 10 === 0) ? 'warn' : 'debug'
      log[level]({ attempt: attemptNumber, err: error.message }, `${what} failed; retrying`)
    }
  })
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function pause (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done () {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done)
  })
}

/**
 * Whether `promise` settled (either way) within `ms`. For stops that must not wait for ever on
 * a thread stuck on a hung disk.
 */
export async function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const settled = await Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  ])
  clearTimeout(timer)
  return settled
}
