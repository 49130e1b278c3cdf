/**
 * Puts a zone's retained announcement right when one expires (retained.ts): at each expiry
 * time, on the server's own timer. Started with the server: its first pass looks at every zone
 * with an announcement already over (expired, or withdrawn, while no server ran), so what
 * kiosks are shown survives a restart. Another instance's new announcements are found by
 * looking again at least every `pollMs` (the timer is rebuilt from the database each pass).
 * A pass that fails is logged and run again a poll later; nothing is lost, as the next pass
 * looks at everything over since the last one that worked.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/database.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import { retainCurrent } from './retained.js'

export const EXPIRY_POLL_MS = 60_000

export class AnnouncementExpiry {
  private timer?: NodeJS.Timeout
  private running?: Promise<void>
  private stopped = true
  private wokenWhileRunning = false
  /** The database's time at the last pass that worked: what expired after it is due. */
  private lastPassAt?: Date

  constructor (
    private readonly db: Database,
    private readonly downlink: DownlinkQueue,
    private readonly log: FastifyBaseLogger,
    private readonly pollMs = EXPIRY_POLL_MS
  ) {}

  async start (): Promise<void> {
    this.stopped = false
    await this.runPass()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  /** An announcement was posted or withdrawn here: its expiry may be the next one. */
  wake (): void {
    if (this.stopped) return
    // A pass under way may have read the announcements before this one: run another after it.
    if (this.running) return void (this.wokenWhileRunning = true)
    clearTimeout(this.timer)
    void this.runPass()
  }

  private async runPass (): Promise<void> {
    let nextInMs: number
    const pass = this.pass()
    this.running = pass.then(() => {}, () => {})
    try {
      nextInMs = await pass
    } catch (err) {
      this.log.error({ err }, 'announcement expiry pass failed; trying again')
      nextInMs = this.pollMs
    }
    this.running = undefined
    if (this.stopped) return
    if (this.wokenWhileRunning) nextInMs = 0
    this.wokenWhileRunning = false
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.runPass() }, Math.min(this.pollMs, Math.max(10, nextInMs)))
  }

  /** One pass; resolves to how long until the next expiry, ms. */
  private async pass (): Promise<number> {
    const { now, zones, changed, nextInMs } = await this.db.transaction(async (tx) => {
      const [due] = await tx.query<{ now: Date, zones: string[] | null }>(
        `SELECT now() AS now, (SELECT array_agg(DISTINCT zone) FROM announcements
          WHERE expires_at <= now() AND ($1::timestamptz IS NULL OR expires_at > $1)) AS zones`, [this.lastPassAt ?? null])
      const zones = due!.zones ?? []
      const changed = await retainCurrent(tx, this.db.engine, this.downlink, zones)
      const [next] = await tx.query<{ in_ms: number | null }>(
        `SELECT (EXTRACT(EPOCH FROM min(expires_at) - now()) * 1000)::float8 AS in_ms
           FROM announcements WHERE expires_at > now()`)
      return { now: due!.now, zones, changed, nextInMs: next?.in_ms ?? Infinity }
    })
    this.lastPassAt = now
    if (changed > 0) {
      await this.downlink.notify()
      this.log.info({ zones, changed }, 'announcements over: their zones\' retained messages put right')
    }
    return nextInMs
  }
}
