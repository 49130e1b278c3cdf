/**
 * Reads the console must not lose: one alert's read after a stream event, a full reload after
 * the stream (re)opened. Each runs under a key until it succeeds, again after 1 s, 2 s, 4 s…
 * at most 30 s apart: a proxy's 502 or a blip on the way must delay a panic by seconds, not
 * drop it. While a key waits for its retry, `failing()` says so, and the console shows its
 * data as incomplete instead of "live".
 *
 * Runs of one key may overlap (two stream events for one alert; a reload after a reconnect
 * while the one before still hangs): a run that succeeds settles every failure of the runs
 * started before it, and a failure of a run older than a success is no failure at all.
 */
const FIRST_RETRY_MS = 1000
const MAX_RETRY_MS = 30_000
/** Keys whose last success is remembered; beyond, the oldest are forgotten (at worst, one needless retry). */
const KEEP_SUCCESSES = 10_000

/**
 * @param {{ onChange?: () => void, firstRetryMs?: number, maxRetryMs?: number }} [options]
 */
export function createRetrier ({ onChange = () => {}, firstRetryMs = FIRST_RETRY_MS, maxRetryMs = MAX_RETRY_MS } = {}) {
  let runs = 0
  /** key → its retry, while its last run failed (`startedAt`: when that run started) */
  /** @type {Map<string, { timer: ReturnType<typeof setTimeout>, attempt: number, error: unknown, startedAt: number }>} */
  const waiting = new Map()
  /** key → when the latest run that succeeded started */
  /** @type {Map<string, number>} */
  const succeeded = new Map()

  const settle = (/** @type {string} */ key) => {
    clearTimeout(waiting.get(key)?.timer)
    waiting.delete(key)
  }

  /**
   * Runs `task` now. Resolves once this attempt is over, whether it succeeded or not.
   * @param {string} key
   * @param {() => Promise<void>} task
   */
  async function run (key, task, attempt = 0) {
    const startedAt = ++runs
    try {
      await task()
      if ((succeeded.get(key) ?? 0) < startedAt) {
        succeeded.delete(key)
        succeeded.set(key, startedAt)
        if (succeeded.size > KEEP_SUCCESSES) succeeded.delete(/** @type {string} */ (succeeded.keys().next().value))
      }
      if ((waiting.get(key)?.startedAt ?? Infinity) < startedAt) settle(key)
    } catch (error) {
      const superseded = (succeeded.get(key) ?? 0) > startedAt || (waiting.get(key)?.startedAt ?? 0) > startedAt
      if (!superseded) {
        const before = waiting.get(key)
        settle(key)
        const next = Math.max(attempt, before?.attempt ?? 0) + 1
        const delay = Math.min(firstRetryMs * 2 ** (next - 1), maxRetryMs)
        waiting.set(key, { timer: setTimeout(() => run(key, task, next), delay), attempt: next, error, startedAt })
      }
    }
    onChange()
  }

  return {
    run,
    /** The keys whose last run failed, each with its error, waiting for their retry. */
    failing () { return [...waiting].map(([key, { error }]) => ({ key, error })) },
    /** Drops a key's waiting retry (what it would read is no longer wanted). */
    cancel (/** @type {string} */ key) {
      const had = waiting.has(key)
      settle(key)
      if (had) onChange()
    },
    /** Drops every waiting retry (the console signs out). */
    stop () {
      for (const key of [...waiting.keys()]) settle(key)
    }
  }
}
