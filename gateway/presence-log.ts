/**
 * Presence changes waiting for the server (`presence` in the ingest batch), kept durably like
 * events: a device that went offline while the server was away is still reported when it
 * returns. The waiting changes are held in memory for the forwarder and written to disk by the
 * state writer's thread (state-writer.ts): the broker's thread reads the disk at start-up only.
 */
import { EventEmitter } from 'node:events'
import type { PresenceChange } from '../protocol/index.js'
import type { StateDb } from './state-db.js'
import type { StateWriter, Write } from './state-writer.js'

export interface SavedPresence { deviceId: string, kind: string, state: 'online' | 'offline', lastSeen: number }

const INSERT = 'INSERT INTO presence_outbox (id, body) VALUES (?, ?)'
const SAVE_STATE = `INSERT INTO presence_state (device_id, kind, state, last_seen) VALUES (?, ?, ?, ?)
  ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind, state = excluded.state, last_seen = excluded.last_seen`
const REMOVE = 'DELETE FROM presence_outbox WHERE id IN (SELECT value FROM json_each(?))'
const REMOVE_UP_TO = 'DELETE FROM presence_outbox WHERE id <= ?'

/**
 * Changes waiting for the server held at most (~25 MB): a fleet that flaps for hours while
 * the server is away must not exhaust the gateway's memory. Past it the oldest are dropped:
 * each device's latest state, the one that matters when the server returns, is kept.
 */
export const MAX_WAITING_CHANGES = 100_000

export class PresenceLog extends EventEmitter<{ appended: [], overflow: [dropped: number] }> {
  /** Changes not yet confirmed by the server, oldest first. */
  private waiting: Array<{ id: number, change: PresenceChange }>
  private nextId: number
  private queued: Array<{ id: number, change: PresenceChange, kind: string }> = []
  private readonly saved: SavedPresence[]

  constructor (db: StateDb, private readonly writer: StateWriter, private readonly maxWaiting = MAX_WAITING_CHANGES) {
    super()
    const rows = db.prepare('SELECT id, body FROM presence_outbox ORDER BY id DESC LIMIT ?').all(maxWaiting) as Array<{ id: number, body: string }>
    this.waiting = rows.reverse().map((row) => ({ id: row.id, change: JSON.parse(row.body) as PresenceChange }))
    if (rows.length === maxWaiting) writer.write({ sql: REMOVE_UP_TO, params: [rows[0]!.id - 1] })
    this.nextId = (this.waiting.at(-1)?.id ?? 0) + 1
    this.saved = db.prepare('SELECT device_id AS deviceId, kind, state, last_seen AS lastSeen FROM presence_state').all() as SavedPresence[]
  }

  /**
   * Records the change and the device's new state. The changes of one event-loop turn are
   * written together (one transaction): after a gateway restart thousands of devices reconnect
   * at once, and a transaction each would keep the disk busy for nothing.
   */
  append (change: PresenceChange, kind: string): void {
    const id = this.nextId++
    this.waiting.push({ id, change })
    if (this.queued.push({ id, change, kind }) === 1) setImmediate(() => this.flush())
    if (this.waiting.length > this.maxWaiting) this.dropOldest()
  }

  /** Hands what is queued now to the writer (also called before shutting down). */
  flush (): void {
    if (this.queued.length === 0) return
    const batch = this.queued
    this.queued = []
    const writes: Write[] = []
    for (const { id, change, kind } of batch) {
      writes.push({ sql: INSERT, params: [id, JSON.stringify(change)] })
      writes.push({ sql: SAVE_STATE, params: [change.deviceId, kind, change.state, change.at] })
    }
    this.writer.write(...writes)
    this.emit('appended')
  }

  private dropOldest (): void {
    const dropped = this.waiting.splice(0, this.waiting.length - this.maxWaiting)
    this.flush() // the DELETE must follow the INSERTs
    this.writer.write({ sql: REMOVE_UP_TO, params: [dropped.at(-1)!.id] })
    this.emit('overflow', dropped.length)
  }

  /** What each device's presence was when the gateway last ran (as read at start-up). */
  lastStates (): SavedPresence[] {
    return this.saved
  }

  /** The oldest changes the server has not confirmed. */
  peek (limit: number): Array<{ id: number, change: PresenceChange }> {
    return this.waiting.slice(0, limit)
  }

  /** The server has them: forget them. */
  remove (ids: number[]): void {
    if (ids.length === 0) return
    this.flush() // its DELETE must follow the INSERTs
    const gone = new Set(ids)
    this.waiting = this.waiting.filter((entry) => !gone.has(entry.id))
    this.writer.write({ sql: REMOVE, params: [JSON.stringify(ids)] })
  }
}
