/**
 * The durable queue of messages for devices. The server writes a row in the same transaction
 * as the change it announces (an alert acknowledged → its device must hear it); gateways read
 * rows after the last id they published, so nothing is lost across restarts of either side.
 */
import type { Database, Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { DownlinkMessage } from '../../protocol/index.js'
import { ADVISORY_LOCKS } from '../db/advisory-locks.js'

export interface OutgoingMessage {
  topic: string
  payload: unknown
  retain?: boolean
}

/** How often a waiting long poll looks at the table itself, whatever it was told. */
const RECHECK_MS = 1000
/** Messages older than this are gone from the table (a gateway away longer resumes at the head). */
const KEEP_DAYS = 30
/** How often a read prunes, at most. */
const PRUNE_EVERY_MS = 10 * 60_000

export class DownlinkQueue {
  private prunedAt = -Infinity

  constructor (private readonly db: Database, private readonly bus: Bus) {}

  /**
   * Forgets messages older than `keepDays`: each alert transition queues one, and nothing took
   * them away. Retained ones (announcements) stay, and so does the newest, which gateways count
   * their position from.
   */
  async prune (keepDays = KEEP_DAYS): Promise<number> {
    const rows = await this.db.query(
      `DELETE FROM downlink WHERE created_at < now() - make_interval(days => $1) AND NOT retain
         AND id < (SELECT max(id) FROM downlink)
       RETURNING id`, [keepDays])
    return rows.length
  }

  /** Adds messages inside the caller's transaction; call `notify()` after it commits. */
  async enqueue (tx: Queryable, messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return
    // Ids must become visible in id order, or a gateway reading "after N" could skip a row that
    // commits late. Holding this lock to commit serializes the (rare) downlink writers.
    if (this.db.engine === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.downlinkOrder])
    await tx.query(
      `INSERT INTO downlink (topic, payload, retain)
       SELECT m.topic, m.payload, m.retain FROM jsonb_to_recordset($1::jsonb) AS m(topic text, payload jsonb, retain boolean)`,
      [JSON.stringify(messages.map((m) => ({ topic: m.topic, payload: m.payload, retain: m.retain ?? false })))])
  }

  async notify (): Promise<void> {
    this.bus.emit('downlink', { head: await this.head() })
  }

  async head (): Promise<number> {
    const rows = await this.db.query<{ head: number }>('SELECT COALESCE(max(id), 0)::int8 AS head FROM downlink')
    return rows[0]?.head ?? 0
  }

  /**
   * Messages after `after`, waiting up to `waitMs` for the first one (long poll).
   * A gateway with no position, or one ahead of the head (its store outlived ours), starts at the head.
   *
   * It listens before it first looks: a message committed between the look and the listening
   * would otherwise wait out the whole poll (an operator's "help is coming" 25 s late). And it
   * looks again every `RECHECK_MS` while it waits: another server instance's messages are
   * announced only in that instance's process.
   */
  async read (after: number | undefined, waitMs: number, limit: number, signal: AbortSignal): Promise<{ head: number, messages: DownlinkMessage[] }> {
    if (performance.now() - this.prunedAt >= PRUNE_EVERY_MS) {
      // Gateways poll all the time: one of their reads does the pruning, now and then.
      this.prunedAt = performance.now()
      await this.prune().catch(() => {})
    }
    let announced = 0
    let wake = () => {}
    const onDownlink = ({ head }: { head: number }) => { announced = Math.max(announced, head); wake() }
    this.bus.on('downlink', onDownlink)
    try {
      const head = await this.head()
      const from = after === undefined || after > head ? head : after
      let messages = await this.rowsAfter(from, limit)
      const deadline = Date.now() + waitMs
      while (messages.length === 0 && !signal.aborted && Date.now() < deadline) {
        if (announced <= from) {
          await new Promise<void>((resolve) => {
            const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
            const timer = setTimeout(done, Math.min(RECHECK_MS, deadline - Date.now()))
            signal.addEventListener('abort', done)
            wake = done
          })
        }
        messages = await this.rowsAfter(from, limit)
        // Announced but not visible yet (another instance committed later than it said): look again soon.
        if (messages.length === 0 && announced > from) announced = from
      }
      return { head: messages.at(-1)?.id ?? from, messages }
    } finally {
      wake = () => {}
      this.bus.off('downlink', onDownlink)
    }
  }

  private rowsAfter (after: number, limit: number): Promise<DownlinkMessage[]> {
    return this.db.query<DownlinkMessage>(
      'SELECT id, topic, payload, retain FROM downlink WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])
  }
}
