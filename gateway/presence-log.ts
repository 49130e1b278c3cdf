/**
 * Presence changes waiting for the server (`presence` in the ingest batch), kept on disk too:
 * a device that went offline while the server was away is still reported when it returns, and
 * after a gateway restart. The waiting changes are held in memory for the forwarder and written
 * by the state writer's thread (state-writer.ts): the broker's thread reads the disk at
 * start-up only. Written with synchronous=NORMAL, a moment after they happen: a crash can take
 * the last of them, which the supervision makes up for after the restart.
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
/**
 * Writes the state writer may be behind before changes stop being handed to it: while the disk
 * hangs they are merged here instead (what is still waiting, each device's last state), so the
 * writer's queue does not grow with every flap for as long as the hang lasts.
 */
const WRITER_BEHIND = 100

export class PresenceLog extends EventEmitter<{ appended: [], overflow: [dropped: number] }> {
  /** Changes not yet confirmed by the server, oldest first. */
  private waiting: Array<{ id: number, change: PresenceChange }>
  private nextId: number
  /** Not yet handed to the writer: changes to insert (in id order), ids to delete, each device's last state. */
  private readonly unwritten = { inserts: new Map<number, PresenceChange>(), deletes: [] as number[], states: new Map<string, [kind: string, state: string, at: number]>() }
  private announced = true
  private flushTimer?: NodeJS.Timeout
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
   * announced and written together (one transaction): after a gateway restart thousands of
   * devices reconnect at once, and a transaction each would keep the disk busy for nothing.
   */
  append (change: PresenceChange, kind: string): void {
    const id = this.nextId++
    this.waiting.push({ id, change })
    this.unwritten.inserts.set(id, change)
    this.unwritten.states.set(change.deviceId, [kind, change.state, change.at])
    if (this.announced) {
      this.announced = false
      setImmediate(() => {
        this.announced = true
        this.emit('appended')
        this.flush()
      })
    }
    if (this.waiting.length > this.maxWaiting) this.emit('overflow', this.shrink())
  }

  /**
   * Hands what is not written yet to the writer (also called before shutting down), unless
   * the writer is far behind (a disk that hangs): then in a second, merged with what comes.
   */
  flush (force = false): void {
    const { inserts, deletes, states } = this.unwritten
    if (inserts.size === 0 && deletes.length === 0 && states.size === 0) return
    if (!force && this.writer.waiting() >= WRITER_BEHIND) {
      this.flushTimer ??= setTimeout(() => { this.flushTimer = undefined; this.flush() }, 1000).unref()
      return
    }
    const writes: Write[] = []
    for (const [id, change] of inserts) writes.push({ sql: INSERT, params: [id, JSON.stringify(change)] })
    for (const [deviceId, [kind, state, at]] of states) writes.push({ sql: SAVE_STATE, params: [deviceId, kind, state, at] })
    if (deletes.length > 0) writes.push({ sql: REMOVE, params: [JSON.stringify(deletes)] })
    inserts.clear()
    states.clear()
    this.unwritten.deletes = []
    this.writer.write(...writes)
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
    const gone = new Set(ids)
    this.waiting = this.waiting.filter((entry) => !gone.has(entry.id))
    this.forgetOnDisk(ids)
  }

  /** Changes never written need no delete; the others are deleted with the next write. */
  private forgetOnDisk (ids: Iterable<number>): void {
    for (const id of ids) if (!this.unwritten.inserts.delete(id)) this.unwritten.deletes.push(id)
    if (this.announced) this.flush()
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
    this.forgetOnDisk(gone)
    return gone.size
  }
}
