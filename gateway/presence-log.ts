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

/**
 * Changes waiting for the server held at most (~25 MB): a fleet that flaps for hours while
 * the server is away must not exhaust the gateway's memory. Past it, the changes a later one
 * of the same device supersedes go first: each device's latest state, the one that matters
 * when the server returns, is kept. Only with more devices than that are the oldest dropped.
 */
export const MAX_WAITING_CHANGES = 100_000

export class PresenceLog extends EventEmitter<{ appended: [], overflow: [dropped: number] }> {
  /** Changes not yet confirmed by the server, oldest first. */
  private waiting: Array<{ id: number, change: PresenceChange }>
  private nextId: number
  private queued: Array<{ id: number, change: PresenceChange, kind: string }> = []
  /** Ids dropped from memory past the bound, to delete from disk with the next write. */
  private dropped: number[] = []
  private readonly saved: SavedPresence[]

  constructor (db: StateDb, private readonly writer: StateWriter, private readonly maxWaiting = MAX_WAITING_CHANGES) {
    super()
    const rows = db.prepare('SELECT id, body FROM presence_outbox ORDER BY id').all() as Array<{ id: number, body: string }>
    this.waiting = rows.map((row) => ({ id: row.id, change: JSON.parse(row.body) as PresenceChange }))
    this.nextId = (this.waiting.at(-1)?.id ?? 0) + 1
    this.saved = db.prepare('SELECT device_id AS deviceId, kind, state, last_seen AS lastSeen FROM presence_state').all() as SavedPresence[]
    if (this.waiting.length > maxWaiting) {
      const dropped = this.shrink()
      this.flush()
      setImmediate(() => this.emit('overflow', dropped)) // told once the gateway listens
    }
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
    if (this.waiting.length > this.maxWaiting) this.emit('overflow', this.shrink())
  }

  /** Hands what is queued now to the writer (also called before shutting down). */
  flush (): void {
    if (this.queued.length === 0 && this.dropped.length === 0) return
    const batch = this.queued
    this.queued = []
    const writes: Write[] = []
    for (const { id, change, kind } of batch) {
      writes.push({ sql: INSERT, params: [id, JSON.stringify(change)] })
      writes.push({ sql: SAVE_STATE, params: [change.deviceId, kind, change.state, change.at] })
    }
    // After the INSERTs: a change dropped in the same turn it came is deleted, not kept.
    if (this.dropped.length > 0) writes.push({ sql: REMOVE, params: [JSON.stringify(this.dropped)] })
    this.dropped = []
    this.writer.write(...writes)
    if (batch.length > 0) this.emit('appended')
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

  /**
   * Back to 90% of the bound (so this runs once per tenth of it, not on every change): first
   * the changes a later one of the same device supersedes, oldest first, then the oldest.
   * Returns how many were dropped.
   */
  private shrink (): number {
    const target = Math.floor(this.maxWaiting * 0.9)
    let excess = this.waiting.length - target
    const drop = new Set<number>()
    const latest = new Set<string>()
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const { id, change } = this.waiting[i]!
      if (latest.has(change.deviceId)) drop.add(id)
      else latest.add(change.deviceId)
    }
    // Superseded ones, oldest first, only as many as needed.
    const superseded = this.waiting.filter((entry) => drop.has(entry.id)).slice(0, excess).map((entry) => entry.id)
    const gone = new Set(superseded)
    excess -= gone.size
    for (const entry of this.waiting) {
      if (excess <= 0) break
      if (!gone.has(entry.id)) { gone.add(entry.id); excess-- }
    }
    this.waiting = this.waiting.filter((entry) => !gone.has(entry.id))
    this.dropped.push(...gone)
    if (this.queued.length === 0) setImmediate(() => this.flush())
    return gone.size
  }
}
