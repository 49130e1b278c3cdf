/**
 * The durable outbox: accepted events wait here until the server has confirmed them.
 *
 * `append` is group-committed: every event appended during one turn of the event loop is
 * written in one SQLite transaction (one fsync), and each caller's promise resolves only
 * after that commit. The broker sends PUBACK when the promise resolves, never before.
 */
import { EventEmitter } from 'node:events'
import type { GatewayEvent } from '../protocol/index.js'
import type { StateDb } from './state-db.js'

export interface OutboxEntry {
  id: number
  event: GatewayEvent
}

interface Pending {
  event: GatewayEvent
  resolve: () => void
  reject: (err: Error) => void
}

export class Outbox extends EventEmitter<{ appended: [] }> {
  private pending: Pending[] = []
  private readonly insert
  private readonly writeBatch

  constructor (private readonly db: StateDb) {
    super()
    // OR IGNORE: a QoS 1 redelivery of an event still waiting here is the same event.
    this.insert = db.prepare('INSERT OR IGNORE INTO outbox (event_id, device_id, type, body, received_at) VALUES (?, ?, ?, ?, ?)')
    this.writeBatch = db.transaction((events: GatewayEvent[]) => {
      for (const e of events) this.insert.run(e.eventId, e.deviceId, e.event.type, JSON.stringify(e), e.receivedAt)
    })
  }

  append (event: GatewayEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ event, resolve, reject }) === 1) setImmediate(() => this.flush())
    })
  }

  private flush (): void {
    const batch = this.pending
    this.pending = []
    try {
      this.writeBatch(batch.map((p) => p.event))
    } catch (err) {
      for (const p of batch) p.reject(err as Error)
      return
    }
    for (const p of batch) p.resolve()
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
    this.db.transaction(() => { for (const id of ids) del.run(id) })()
  }

  depth (): number {
    return (this.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n
  }
}
