/**
 * The passes of one background loop (the escalator, the webhook sender, the gateway watch): one
 * at a time, each within a deadline.
 *
 * A pass can wait on something that never answers: a database connection gone half-open (the
 * database host lost power, a NAT dropped the flow) neither answers nor fails. Were the next
 * pass to wait for that one, the loop would stop for good while the rest of the server, on other
 * connections, looks healthy. So a pass not settled in time is abandoned: logged, counted, its
 * signal aborted (a pass that looks at it stops at its next step), and the next pass runs
 * without it. Each loop's passes are idempotent and take their rows under locks, so an abandoned
 * pass that finishes after all, beside the next one, does no harm (as two server instances
 * passing together do none).
 *
 * Passes are counted by result, and the time of the last one completed is a gauge, so a loop
 * that stalls all the same (every pass failing) shows: `sos_loop_last_pass_timestamp_seconds`.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { ServerMetrics } from '../metrics.js'
import type { LogBudget } from '../log-budget.js'
import { databaseUnreachable, outageLines, UNREACHABLE } from '../db/unreachable.js'

export type LoopName = 'escalator' | 'webhooks' | 'gateway_watch'

export interface PassRunnerOptions<T> {
  loop: LoopName
  /** A pass not settled within this long is abandoned. */
  deadlineMs: number
  /** What `run` answers for a pass that failed or was abandoned. */
  fallback: T
  /** Logged (with the error) when a pass fails. */
  failedMessage: string
}

type Settled<T> = { value: T } | { error: unknown }

export class PassRunner<T> {
  private current?: Promise<T>
  /**
   * Passes abandoned at their deadline and not settled yet. Stopping waits for them too: one
   * merely slow (a busy embedded database) still writes, and the database must not close under it.
   */
  private readonly abandoned = new Set<Promise<unknown>>()
  /** Monotonic, so a step of the wall clock neither hides a stall nor fakes one; from creation until a first pass. */
  private lastCompletedAt = performance.now()
  private readonly outage: LogBudget

  constructor (
    private readonly options: PassRunnerOptions<T>,
    private readonly metrics: ServerMetrics,
    private readonly log?: FastifyBaseLogger
  ) {
    // Passes failed for want of the database: logged as an outage, a few a minute.
    this.outage = outageLines((loop, passes) => this.log?.error({ loop, passes }, `more ${loop} passes failed: ${UNREACHABLE} (not logged one by one)`))
  }

  /** Runs `pass`, or joins the one in progress. Never throws. */
  run (pass: (abandoned: AbortSignal) => Promise<T>): Promise<T> {
    this.current ??= this.attempt(pass).finally(() => { this.current = undefined })
    return this.current
  }

  /**
   * Waits for every pass still running, the one in progress and those abandoned at their
   * deadline, for `withinMs` at most (default: one pass deadline). Answers whether they all
   * settled: a pass that never does (a dead connection) must not hold a shutdown forever.
   */
  async settled (withinMs = this.options.deadlineMs): Promise<boolean> {
    // The loop is stopping: what its outage lines held back is told now.
    this.outage.flush()
    const running = [this.current, ...this.abandoned].filter((pass) => pass !== undefined)
    if (running.length === 0) return true
    let timer: NodeJS.Timeout | undefined
    const waited = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), withinMs) })
    try {
      return await Promise.race([Promise.allSettled(running).then(() => true), waited])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Milliseconds since a pass last completed (since this runner was made, before the first). */
  msSinceLastCompletedPass (): number {
    return performance.now() - this.lastCompletedAt
  }

  private async attempt (pass: (abandoned: AbortSignal) => Promise<T>): Promise<T> {
    const { loop, deadlineMs, fallback, failedMessage } = this.options
    const abandon = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const overdue = new Promise<'overdue'>((resolve) => {
      timer = setTimeout(() => resolve('overdue'), deadlineMs)
      timer.unref()
    })
    // Never rejects: a pass that fails after it was abandoned is no one's to hear.
    const settled = this.started(pass, abandon.signal).then((value): Settled<T> => ({ value }), (error: unknown): Settled<T> => ({ error }))
    const outcome = await Promise.race([settled, overdue])
    clearTimeout(timer)
    if (outcome === 'overdue') {
      abandon.abort()
      this.abandoned.add(settled)
      void settled.then(() => this.abandoned.delete(settled))
      this.metrics.loopPasses.inc({ loop, result: 'abandoned' })
      this.log?.error({ loop, deadlineMs }, `${loop} pass did not finish within ${deadlineMs / 1000} s: abandoned, the next pass runs without it`)
      return fallback
    }
    if ('error' in outcome) {
      this.metrics.loopPasses.inc({ loop, result: 'failed' })
      if (!databaseUnreachable(outcome.error) || this.outage.allows(loop)) this.log?.error({ err: outcome.error }, failedMessage)
      return fallback
    }
    this.lastCompletedAt = performance.now()
    this.metrics.loopPasses.inc({ loop, result: 'ok' })
    this.metrics.loopLastPass.set({ loop }, Date.now() / 1000)
    return outcome.value
  }

  /** The pass, its synchronous throw a rejection like any other failure. */
  private async started (pass: (abandoned: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    return await pass(signal)
  }
}
