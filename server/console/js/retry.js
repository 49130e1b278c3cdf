/**
 * Reads the console must not lose: one alert's read after a stream event, a full reload after
 * the stream (re)opened. Each runs under a key until it succeeds, again after about 1 s, 2 s,
 * 4 s… at most 30 s apart: a proxy's 502 or a blip on the way must delay a panic by seconds,
 * not drop it. While a key waits for its retry, `failing()` says so, and the console shows its
 * data as incomplete instead of "live".
 *
 * Each delay is jittered (between half of it and all of it): hundreds of reads that failed
 * together (an outage's alerts against a struggling server) must not come back together, in
 * one wave every 30 s from every console.
 *
 * A 401 or 403 is not retried (the token is revoked or lacks the right: asking again changes
 * nothing, and the console signs out on a 401); the key stays failing until a run of it
 * succeeds. Once `stop()`ped (signed out), nothing runs or is retried again.
 *
 * Runs of one key may overlap (two stream events for one alert; a reload after a reconnect
 * while the one before still hangs): a run that succeeds settles every failure of the runs
 * started before it, and a failure of a run older than a success is no failure at all.
 */
const FIRST_RETRY_MS = 1000
const MAX_RETRY_MS = 30_000
/** Part of each delay taken off at random (0: none). */
const JITTER = 0.5
/** Keys whose last success is remembered; beyond, the oldest are forgotten (at worst, one needless retry). */
const KEEP_SUCCESSES = 10_000

/** Whether asking again may help: not when the server refused the token. */
export const retryable = (/** @type {any} */ error) => error?.status !== 401 && error?.status !== 403

/**
 * @param {{ onChange?: () => void, firstRetryMs?: number, maxRetryMs?: number, random?: () => number }} [options]
 *   `random`: in [0, 1), for the jitter (a test passes its own)
 */
export function createRetrier ({ onChange = () => {}, firstRetryMs = FIRST_RETRY_MS, maxRetryMs = MAX_RETRY_MS, random = Math.random } = {}) {
  let runs = 0
  let stopped = false
  /**
   * key → its retry, while its last run failed (`startedAt`: when that run started; no timer:
   * not retried, see `retryable`)
   * @type {Map<string, { timer: ReturnType<typeof setTimeout> | undefined, attempt: number, error: unknown, startedAt: number }>}
   */
  const waiting = new Map()
  /** key → when the latest run that succeeded started */
  /** @type {Map<string, number>} */
  const succeeded = new Map()

  const settle = (/** @type {string} */ key) => {
    clearTimeout(waiting.get(key)?.timer)
    waiting.delete(key)
  }
  const delayOf = (/** @type {number} */ attempt) =>
    Math.min(firstRetryMs * 2 ** (attempt - 1), maxRetryMs) * (1 - JITTER * random())

  /**
   * Runs `task` now. Resolves once this attempt is over, whether it succeeded or not.
   * @param {string} key
   * @param {() => Promise<void>} task
   */
  async function run (key, task, attempt = 0) {
    if (stopped) return
    const startedAt = ++runs
    try {
      await task()
      if (stopped) return
      if ((succeeded.get(key) ?? 0) < startedAt) {
        succeeded.delete(key)
        succeeded.set(key, startedAt)
        if (succeeded.size > KEEP_SUCCESSES) succeeded.delete(/** @type {string} */ (succeeded.keys().next().value))
      }
      if ((waiting.get(key)?.startedAt ?? Infinity) < startedAt) settle(key)
    } catch (error) {
      if (stopped) return
      const superseded = (succeeded.get(key) ?? 0) > startedAt || (waiting.get(key)?.startedAt ?? 0) > startedAt
      if (!superseded) {
        const before = waiting.get(key)
        settle(key)
        const next = Math.max(attempt, before?.attempt ?? 0) + 1
        const timer = retryable(error) ? setTimeout(() => run(key, task, next), delayOf(next)) : undefined
        waiting.set(key, { timer, attempt: next, error, startedAt })
      }
    }
    onChange()
  }

  return {
    run,
    /** The keys whose last run failed, each with its error, waiting for their retry. */
    failing () { return [...waiting].map(([key, { error }]) => ({ key, error })) },
    /** Which run started last (runs started before it have a smaller number: see `cancelStartedBefore`). */
    lastRun: () => runs,
    /** Drops a key's waiting retry (what it would read is no longer wanted). */
    cancel (/** @type {string} */ key) {
      const had = waiting.has(key)
      settle(key)
      if (had) onChange()
    },
    /**
     * Drops the waiting retries of the keys starting with one of `prefixes` whose failed run
     * started before run number `before` (a full read since then covered what they would read).
     */
    cancelStartedBefore (/** @type {string[]} */ prefixes, /** @type {number} */ before) {
      let had = false
      for (const [key, { startedAt }] of [...waiting]) {
        if (startedAt < before && prefixes.some((p) => key.startsWith(p))) { settle(key); had = true }
      }
      if (had) onChange()
    },
    /**
     * Drops every waiting retry of the keys starting with `prefix`, and has `key` (a read that
     * covers them all) wait for a retry instead, at the latest backoff among them, unless it
     * waits already. Too many reads failing at once: one retry in their place.
     * @param {string} prefix
     * @param {string} key
     * @param {() => Promise<void>} task
     */
    replace (prefix, key, task) {
      if (stopped) return
      let attempt = 0
      /** @type {unknown} */
      let error = null
      for (const [k, entry] of [...waiting]) {
        if (!k.startsWith(prefix)) continue
        if (entry.attempt >= attempt) { attempt = entry.attempt; error = entry.error }
        settle(k)
      }
      if (!waiting.has(key)) {
        const next = Math.max(attempt, 1)
        waiting.set(key, { timer: setTimeout(() => run(key, task, next), delayOf(next)), attempt: next, error, startedAt: runs })
      }
      onChange()
    },
    /** Drops every waiting retry, and runs nothing again (the console signs out). */
    stop () {
      stopped = true
      for (const key of [...waiting.keys()]) settle(key)
    }
  }
}
