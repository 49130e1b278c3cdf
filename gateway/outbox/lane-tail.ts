/**
 * A lane's waiting entries, kept in memory as well as on disk, so the forwarder takes its next
 * batch without a round trip to the outbox's thread (where the read waits behind the commit in
 * flight) and without reading back what the main thread has just handed over.
 *
 * The copy is used only while it holds the whole lane. It becomes whole when a read from disk
 * finds fewer entries than asked for: that is everything the lane held, and whatever commits
 * later is answered after that read, so it is added here. It stops being whole, and reads go to
 * disk again, when it would grow past its bound (the server has been away long) or memory and
 * disk may differ (a removal that failed, a heartbeat evicted from a full outbox).
 */
import type { OutboxEntry } from './store.js'

export class LaneTail {
  private entries: OutboxEntry[] = []
  private whole = false

  constructor (private readonly max: number) {}

  /**
   * The lane's first `limit` entries of devices not in `skip`, or undefined when only the disk
   * knows them.
   */
  head (limit: number, skip?: ReadonlySet<string>): OutboxEntry[] | undefined {
    if (!this.whole) return undefined
    if (!skip || skip.size === 0) return this.entries.slice(0, limit)
    const found: OutboxEntry[] = []
    for (const e of this.entries) {
      if (found.length >= limit) break
      if (!skip.has(e.deviceId)) found.push(e)
    }
    return found
  }

  /** The answer of a read from disk; `everything` when it held all the lane had. */
  read (entries: OutboxEntry[], everything: boolean): void {
    if (!everything || entries.length > this.max) return
    this.entries = entries.slice()
    this.whole = true
  }

  /** Entries the disk has just committed, in order. */
  committed (entries: OutboxEntry[]): void {
    if (!this.whole || entries.length === 0) return
    if (this.entries.length + entries.length > this.max) return this.forget()
    for (const e of entries) this.entries.push(e)
  }

  /**
   * Entries the server confirmed: taken from near the head (requests may be confirmed out of
   * order, but each was sent from the head), so the search stops early.
   */
  removed (ids: readonly number[]): void {
    if (!this.whole || ids.length === 0) return
    const gone = new Set(ids)
    let found = 0
    let end = 0
    while (end < this.entries.length && found < gone.size) {
      if (gone.has(this.entries[end]!.id)) found++
      end++
    }
    const kept = this.entries.slice(0, end).filter((e) => !gone.has(e.id))
    this.entries.splice(0, end, ...kept)
  }

  /** Memory may no longer match the disk: read from disk until it is whole again. */
  forget (): void {
    this.entries = []
    this.whole = false
  }
}
