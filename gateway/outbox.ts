/**
 * The durable outbox: accepted events wait here until the server has confirmed them.
 *
 * `append` is group-committed: every event appended during one turn of the event loop is
 * written in one SQLite transaction (one fsync), and each caller's promise resolves only
 * after that commit. The broker sends PUBACK when the promise resolves, never before.
 *
 * Bounded, with this policy when `maxEvents` is reached (the server has been away long):
 *  1. the oldest stored heartbeat is evicted to make room (a heartbeat's news is stale by then);
 *  2. with no heartbeat left, routine events (heartbeat, battery_low, power_lost, test) are shed:
 *     acknowledged and counted but not kept;
 *  3. alarm events (press, hold, cancel, tamper, report) are ALWAYS stored, past the bound if
 *     need be: only the disk limits them.
 * While full, `full` is true (metric `sos_gateway_outbox_full`, an error log, and a flag in the
 * ingest batch so the server can raise an alert).
 */
import { EventEmitter } from 'node:events'
import type { GatewayEvent } from '../protocol/index.js'
import { UNLIMITED_TYPES } from './rate-limiter.js'
import type { StateDb } from './state-db.js'

export interface OutboxEntry {
  id: number
  event: GatewayEvent
}

export type AppendResult = 'stored' | 'shed'

interface Pending {
  event: GatewayEvent
  resolve: (result: AppendResult) => void
  reject: (err: Error) => void
}

export class Outbox extends EventEmitter<{ appended: [], full: [boolean], shed: [GatewayEvent], evicted: [number] }> {
  private pending: Pending[] = []
  private count: number
  private isFull = false
  private readonly writeBatch

  constructor (private readonly db: StateDb, readonly maxEvents = 200_000) {
    super()
    this.count = (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n
    // OR IGNORE: a QoS 1 redelivery of an event still waiting here is the same event.
    const insert = db.prepare('INSERT OR IGNORE INTO outbox (event_id, device_id, type, body, received_at) VALUES (?, ?, ?, ?, ?)')
    const evictHeartbeat = db.prepare("DELETE FROM outbox WHERE id = (SELECT id FROM outbox WHERE type = 'heartbeat' ORDER BY id LIMIT 1)")
    this.writeBatch = db.transaction((batch: Pending[]) => {
      const results: AppendResult[] = []
      let evicted = 0
      let count = this.count
      for (const { event: e } of batch) {
        if (count >= this.maxEvents) {
          if (evictHeartbeat.run().changes === 1) {
            count--
            evicted++
          } else if (!UNLIMITED_TYPES.has(e.event.type)) {
            results.push('shed')
            continue
          }
        }
        count += insert.run(e.eventId, e.deviceId, e.event.type, JSON.stringify(e), e.receivedAt).changes
        results.push('stored')
      }
      return { results, count, evicted }
    })
  }

  append (event: GatewayEvent): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ event, resolve, reject }) === 1) setImmediate(() => this.flush())
    })
  }

  private flush (): void {
    const batch = this.pending
    this.pending = []
    let outcome: { results: AppendResult[], count: number, evicted: number }
    try {
      outcome = this.writeBatch(batch)
    } catch (err) {
      for (const p of batch) p.reject(err as Error)
      return
    }
    this.count = outcome.count
    batch.forEach((p, i) => {
      const result = outcome.results[i]!
      if (result === 'shed') this.emit('shed', p.event)
      p.resolve(result)
    })
    if (outcome.evicted > 0) this.emit('evicted', outcome.evicted)
    this.updateFull()
    this.emit('appended')
  }

  /** The oldest entries, in arrival order (which keeps each device's order). */
  peek (limit: number): OutboxEntry[] {
    const rows = this.db.prepare('SELECT id, body FROM outbox ORDER BY id LIMIT ?').all(limit) as Array<{ id: number, body: string }>
    return rows.map((row) => ({ id: row.id, event: JSON.parse(row.body) as GatewayEvent }))
  }

  /** Forgets entries the server has confirmed. */
  remove (ids: number[]): void {
    if (ids.length === 0) return
    const del = this.db.prepare('DELETE FROM outbox WHERE id = ?')
    let removed = 0
    this.db.transaction(() => { for (const id of ids) removed += del.run(id).changes })()
    this.count -= removed
    this.updateFull()
  }

  depth (): number {
    return this.count
  }

  get full (): boolean {
    return this.isFull
  }

  /** Receive time of the oldest waiting event, or undefined when empty. */
  oldestReceivedAt (): number | undefined {
    const row = this.db.prepare('SELECT received_at AS at FROM outbox ORDER BY id LIMIT 1').get() as { at: number } | undefined
    return row?.at
  }

  private updateFull (): void {
    const full = this.count >= this.maxEvents
    if (full !== this.isFull) {
      this.isFull = full
      this.emit('full', full)
    }
  }
}
