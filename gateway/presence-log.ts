/**
 * Presence changes waiting for the server (`presence` in the ingest batch), kept durably like
 * events: a device that went offline while the server was away is still reported when it returns.
 */
import { EventEmitter } from 'node:events'
import type { PresenceChange } from '../protocol/index.js'
import type { StateDb } from './state-db.js'

export class PresenceLog extends EventEmitter<{ appended: [], failed: [Error] }> {
  private readonly writeBatch
  // Prepared once: the forwarder's alarm lane reads and forgets changes on every round.
  private readonly selectHead
  private readonly removeBatch
  private queued: Array<{ change: PresenceChange, kind: string }> = []
  private retry?: NodeJS.Timeout

  constructor (private readonly db: StateDb) {
    super()
    const insert = db.prepare('INSERT INTO presence_outbox (body) VALUES (?)')
    const saveState = db.prepare(`INSERT INTO presence_state (device_id, kind, state, last_seen) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, state = excluded.state, last_seen = excluded.last_seen`)
    this.writeBatch = db.transaction((batch: Array<{ change: PresenceChange, kind: string }>) => {
      for (const { change, kind } of batch) {
        insert.run(JSON.stringify(change))
        saveState.run(change.deviceId, kind, change.state, change.at)
      }
    })
    this.selectHead = db.prepare('SELECT id, body FROM presence_outbox ORDER BY id LIMIT ?')
    const remove = db.prepare('DELETE FROM presence_outbox WHERE id = ?')
    this.removeBatch = db.transaction((ids: number[]) => { for (const id of ids) remove.run(id) })
  }

  /**
   * Records the change and the device's new state. The changes of one event-loop turn are
   * written together (one transaction): after a gateway restart thousands of devices reconnect
   * at once, and a transaction each would hold up every press behind them.
   */
  append (change: PresenceChange, kind: string): void {
    if (this.queued.push({ change, kind }) === 1) setImmediate(() => this.flush())
  }

  /** Writes what is queued now (also called before shutting down). */
  flush (): void {
    if (this.queued.length === 0) return
    const batch = this.queued
    this.queued = []
    try {
      this.writeBatch(batch)
    } catch (err) {
      // Disk full or failing: keep the changes, in order, and try again in a second.
      this.queued = [...batch, ...this.queued]
      this.emit('failed', err as Error)
      this.retry ??= setTimeout(() => { this.retry = undefined; this.flush() }, 1000).unref()
      return
    }
    this.emit('appended')
  }

  /** Stops retrying a failed write (the gateway is closing its database). */
  close (): void {
    clearTimeout(this.retry)
    this.retry = undefined
  }

  /** What each device's presence was when the gateway last ran. */
  lastStates (): Array<{ deviceId: string, kind: string, state: 'online' | 'offline', lastSeen: number }> {
    return this.db.prepare('SELECT device_id AS deviceId, kind, state, last_seen AS lastSeen FROM presence_state').all() as never
  }

  peek (limit: number): Array<{ id: number, change: PresenceChange }> {
    const rows = this.selectHead.all(limit) as Array<{ id: number, body: string }>
    return rows.map((row) => ({ id: row.id, change: JSON.parse(row.body) as PresenceChange }))
  }

  remove (ids: number[]): void {
    if (ids.length === 0) return
    this.removeBatch(ids)
  }
}
