/**
 * Dead letters (what gateways refused, and what the database refused of theirs) are kept
 * DEAD_LETTER_RETENTION_DAYS, then deleted: they were kept forever, and one device spraying
 * garbage wrote thousands a second. A job of the server process, not of the database (as event
 * ids are pruned by a TimescaleDB job, db/timescale.ts): it runs on every engine, PGlite and
 * plain PostgreSQL too. Their age is when the server stored them (migration 15), on its own clock.
 *
 * In batches, each a statement of its own: a long backlog never holds a long lock, nor the one
 * connection of an embedded database, and ingest writing dead letters meanwhile never waits on
 * it. Several server instances on one database prune side by side: each skips the rows another
 * has locked.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Queryable } from './database.js'

export interface DeadLetterRetentionOptions {
  /** Dead letters stored longer ago than this many days are deleted; 0 keeps them forever. */
  keepDays: number
  /** Between passes (default an hour). */
  everyMs?: number
  /** The first pass, this long after start (default a minute: not in the start's way). */
  firstAfterMs?: number
  /** Rows deleted per statement (default 1000). */
  batchRows?: number
}

export class DeadLetterRetention {
  private timer?: NodeJS.Timeout
  private running?: Promise<unknown>
  private stopped = false

  constructor (
    private readonly db: Queryable,
    private readonly options: DeadLetterRetentionOptions,
    private readonly log?: FastifyBaseLogger
  ) {}

  /** Prunes now and then until stopped; nothing with `keepDays` 0. */
  start (): void {
    if (this.options.keepDays <= 0 || this.timer) return
    this.stopped = false
    this.schedule(this.options.firstAfterMs ?? 60_000)
  }

  /** Stops, after the batch in progress (a backlog's other batches are left to the next start). */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.running
  }

  /** Deletes the dead letters older than the retention, batch after batch; returns how many. */
  async prune (): Promise<number> {
    const batchRows = this.options.batchRows ?? 1000
    let deleted = 0
    for (;;) {
      const [row] = await this.db.query<{ n: number }>(`
        WITH old AS (
          SELECT id FROM dead_letters WHERE stored_at < now() - make_interval(days => $1)
          ORDER BY stored_at LIMIT $2 FOR UPDATE SKIP LOCKED
        ), gone AS (
          DELETE FROM dead_letters d USING old WHERE d.id = old.id RETURNING 1
        )
        SELECT count(*)::int8 AS n FROM gone`, [this.options.keepDays, batchRows])
      const n = Number(row?.n ?? 0)
      deleted += n
      if (n < batchRows || this.stopped) return deleted
    }
  }

  private schedule (afterMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.prune().then((deleted) => {
        if (deleted > 0) this.log?.info({ deleted, keepDays: this.options.keepDays }, 'dead letters past their retention deleted')
      }, (err: unknown) => {
        this.log?.error({ err }, 'dead letters past their retention could not be deleted; trying again at the next pass')
      }).finally(() => {
        this.running = undefined
        if (!this.stopped) this.schedule(this.options.everyMs ?? 3_600_000)
      })
    }, afterMs)
    this.timer.unref()
  }
}
