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

export class DownlinkQueue {
  constructor (private readonly db: Database, private readonly bus: Bus) {}

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
   */
  async read (after: number | undefined, waitMs: number, limit: number, signal: AbortSignal): Promise<{ head: number, messages: DownlinkMessage[] }> {
    const head = await this.head()
    const from = after === undefined || after > head ? head : after
    let messages = await this.rowsAfter(from, limit)
    if (messages.length === 0 && waitMs > 0 && !signal.aborted) {
      await this.waitForNew(from, waitMs, signal)
      messages = await this.rowsAfter(from, limit)
    }
    return { head: messages.at(-1)?.id ?? from, messages }
  }

  private rowsAfter (after: number, limit: number): Promise<DownlinkMessage[]> {
    return this.db.query<DownlinkMessage>(
      'SELECT id, topic, payload, retain FROM downlink WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])
  }

  private waitForNew (after: number, waitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.bus.off('downlink', onDownlink)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const onDownlink = ({ head }: { head: number }) => { if (head > after) done() }
      const timer = setTimeout(done, waitMs)
      this.bus.on('downlink', onDownlink)
      signal.addEventListener('abort', done)
    })
  }
}
