/**
 * Nothing unacknowledged goes unnoticed: an open panic alert that no operator acknowledged
 * within ESCALATE_AFTER is escalated (level 1), and again at each further interval (level n at
 * n × ESCALATE_AFTER after it opened). Each escalation is kept in the audit trail (open → open,
 * by `system:escalation`, with the level reached in its `level` column), goes out on the live
 * stream, and is queued for the webhooks in the same transaction.
 *
 * The clock is `Date.now()` (not the database's), so tests drive it with fake timers. The level
 * is computed from the elapsed time, so a server that was down catches up in one step.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { ServerMetrics } from '../metrics.js'
import { recordEscalation } from './record-escalation.js'
import type { WebhookSender } from './webhooks.js'
import { PassRunner } from './pass-runner.js'

export interface EscalatorOptions {
  escalateAfterMs: number
  /** How often to look; default a quarter of the interval, at most 5 s. */
  checkEveryMs?: number
  /**
   * A pass not done within this long is abandoned and the next one runs (default 15 s). A pass
   * is one transaction over the alerts due, milliseconds, seconds for thousands due at once
   * after an outage; one that takes this long waits on a dead connection (whose query the pool
   * fails only later, postgres.ts). Escalation can stand that delay (a quarter of the default
   * interval; the level comes from the time waited, so it catches up). A slow pass abandoned all
   * the same still commits, and the next one, waiting on its rows, then finds them done.
   */
  passDeadlineMs?: number
  /**
   * How long `stop()` waits for passes still running, one abandoned at its deadline included
   * (default: one pass deadline; with PostgreSQL's defaults a pass abandoned on a dead
   * connection has failed by then, as its query deadline is 20 s).
   */
  stopWaitMs?: number
  /**
   * No pass completed for this long: the escalator is stalled, and `/readyz` says so (default
   * 2 min: eight pass deadlines, dozens of passes; no slow pass, nor a database blip that
   * `/readyz`'s own query reports anyway, but a broken escalator).
   */
  stalledAfterMs?: number
}

interface EscalatedRow {
  id: string
  device_id: string
  zone: string
  escalation_level: number
  opened_at: Date
  press_count: number
  device_name: string | null
  lat: number | null
  lon: number | null
}

export class Escalator {
  private timer?: NodeJS.Timeout
  private readonly passes: PassRunner<number>
  private readonly passDeadlineMs: number

  constructor (
    private readonly db: Database,
    private readonly bus: Bus,
    private readonly webhooks: WebhookSender,
    private readonly metrics: ServerMetrics,
    private readonly options: EscalatorOptions,
    private readonly log?: FastifyBaseLogger
  ) {
    this.passDeadlineMs = options.passDeadlineMs ?? 15_000
    this.passes = new PassRunner({ loop: 'escalator', deadlineMs: this.passDeadlineMs, fallback: 0, failedMessage: 'escalation check failed' }, metrics, log)
  }

  start (): void {
    if (this.timer) return
    const every = this.options.checkEveryMs ?? Math.min(5000, Math.max(250, this.options.escalateAfterMs / 4))
    this.timer = setInterval(() => { void this.check() }, every)
  }

  /**
   * Stops the timer and waits for every pass still running, one abandoned at its deadline
   * included (`stopWaitMs` at most): the database is closed next, and a pass still writing
   * would find it gone mid-transaction.
   */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    if (!await this.passes.settled(this.options.stopWaitMs ?? this.passDeadlineMs)) {
      this.log?.error({ loop: 'escalator' }, 'escalator stopped with a pass still running (a database that does not answer?): it may fail once the database closes')
    }
  }

  /**
   * One pass; returns how many alerts escalated (0 for one that failed or was abandoned). Never
   * overlaps itself, never throws, never waits longer than its deadline.
   */
  check (): Promise<number> {
    return this.passes.run(() => this.escalateDue(Date.now()))
  }

  /** How long no pass has completed, when that is long enough to call the escalator stalled. */
  stalledForMs (): number | undefined {
    const since = this.passes.msSinceLastCompletedPass()
    return since >= (this.options.stalledAfterMs ?? 120_000) ? since : undefined
  }

  private async escalateDue (now: number): Promise<number> {
    const escalated = await this.db.transaction(async (tx) => {
      const rows = await tx.query<EscalatedRow>(`
        WITH due AS (
          SELECT id, floor((($1::float8 / 1000.0) - extract(epoch FROM opened_at)::float8) * 1000.0 / $2::float8)::int AS level
          FROM alerts
          WHERE kind = 'panic' AND state = 'open' AND NOT test
            -- Only the due ones are locked: an operator acknowledging another alert never waits.
            AND opened_at + make_interval(secs => $2::float8 / 1000.0 * (escalation_level + 1)) <= to_timestamp($1::float8 / 1000.0)
          -- In device order, as batches raising presses take them (raise-alert.ts): in a crowd
          -- of unacknowledged alerts pressed again, the two never hold each other's next one
          -- (a deadlock PostgreSQL notices only after a second).
          ORDER BY device_id
          FOR UPDATE
        )
        UPDATE alerts a SET escalation_level = due.level, escalated_at = to_timestamp($1::float8 / 1000.0), updated_at = now()
        FROM due WHERE a.id = due.id AND due.level > a.escalation_level
        RETURNING a.id, a.device_id, a.zone, a.escalation_level, a.opened_at, a.press_count,
          (SELECT name FROM devices WHERE id = a.device_id) AS device_name,
          (SELECT lat FROM devices WHERE id = a.device_id) AS lat,
          (SELECT lon FROM devices WHERE id = a.device_id) AS lon`,
      [now, this.options.escalateAfterMs])
      for (const row of rows) {
        const waited = Math.round((now - row.opened_at.getTime()) / 1000)
        await recordEscalation(tx, {
          alertId: row.id, level: row.escalation_level, atMs: now,
          note: `escalated to level ${row.escalation_level}: not acknowledged after ${waited} s`
        })
        // Queued with the escalation itself: committed together, or not at all.
        await this.webhooks.enqueue(tx, 'alert.escalated', {
          alertId: row.id,
          deviceId: row.device_id,
          deviceName: row.device_name,
          zone: row.zone,
          lat: row.lat,
          lon: row.lon,
          kind: 'panic',
          state: 'open',
          escalationLevel: row.escalation_level,
          openedAt: row.opened_at.toISOString(),
          pressCount: row.press_count
        })
      }
      return rows
    })
    if (escalated.length > 0) this.webhooks.poke()
    for (const row of escalated) {
      this.metrics.escalations.inc()
      this.bus.emit('alert', { alertId: row.id, deviceId: row.device_id, state: 'open', kind: 'panic', escalationLevel: row.escalation_level })
    }
    if (escalated.length > 0) this.log?.warn({ alerts: escalated.map((r) => r.id) }, 'unacknowledged alerts escalated')
    return escalated.length
  }
}
