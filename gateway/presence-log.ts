/**
 * Presence changes waiting for the server (`presence` in the ingest batch), kept durably like
 * events: a device that went offline while the server was away is still reported when it returns.
 */
import { EventEmitter } from 'node:events'
import type { PresenceChange } from '../protocol/index.js'
import type { StateDb } from './state-db.js'

export class PresenceLog extends EventEmitter<{ appended: [] }> {
  private readonly insert
  private readonly saveState

  constructor (private readonly db: StateDb) {
    super()
    this.insert = db.prepare('INSERT INTO presence_outbox (body) VALUES (?)')
    this.saveState = db.prepare(`INSERT INTO presence_state (device_id, kind, state, last_seen) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, state = excluded.state, last_seen = excluded.last_seen`)
  }

  /** Records the change and the device's new state in one transaction. */
  append (change: PresenceChange, kind: string): void {
    this.db.transaction(() => {
      this.insert.run(JSON.stringify(change))
      this.saveState.run(change.deviceId, kind, change.state, change.at)
    })()
    this.emit('appended')
  }

  /** What each device's presence was when the gateway last ran. */
  lastStates (): Array<{ deviceId: string, kind: string, state: 'online' | 'offline', lastSeen: number }> {
    return this.db.prepare('SELECT device_id AS deviceId, kind, state, last_seen AS lastSeen FROM presence_state').all() as never
  }

  peek (limit: number): Array<{ id: number, change: PresenceChange }> {
    const rows = this.db.prepare('SELECT id, body FROM presence_outbox ORDER BY id LIMIT ?').all(limit) as Array<{ id: number, body: string }>
    return rows.map((row) => ({ id: row.id, change: JSON.parse(row.body) as PresenceChange }))
  }

  remove (ids: number[]): void {
    if (ids.length === 0) return
    const del = this.db.prepare('DELETE FROM presence_outbox WHERE id = ?')
    this.db.transaction(() => { for (const id of ids) del.run(id) })()
  }
}
