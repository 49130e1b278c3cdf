/**
 * Publishes we refused, kept with the reason so a maintainer can see what a device sent, and
 * forwarded to the server (`deadLetters` in the ingest batch) so it is visible fleet-wide.
 * Bounded: a device spraying garbage must not fill the disk, nor the memory.
 *
 * Written by the state writer's thread (state-writer.ts); the letters still to forward are
 * held in memory, so the broker's thread never waits for the disk to refuse a publish.
 */
import type { DeadLetter } from '../protocol/index.js'
import type { StateDb } from './state-db.js'
import type { StateWriter } from './state-writer.js'

/** Enough of a payload to diagnose it. */
const KEEP_BYTES = 4096
/**
 * Letters waiting for the server held in memory at most (~5 MB). While the server is away a
 * spray of garbage can outgrow it: the oldest are then kept on disk only (up to `maxRows`).
 */
const MAX_WAITING = 1000

const INSERT = 'INSERT INTO dead_letters (id, device_id, topic, reason, payload, received_at) VALUES (?, ?, ?, ?, ?, ?)'
const PRUNE = 'DELETE FROM dead_letters WHERE id <= ?'
const MARK_FORWARDED = 'UPDATE dead_letters SET forwarded = 1 WHERE id IN (SELECT value FROM json_each(?))'

export interface DeadLetterEntry { deviceId?: string, topic: string, reason: string, payload: Buffer, receivedAt: number }

export class DeadLetters {
  private waiting: Array<{ id: number, letter: DeadLetter }>
  private nextId: number

  constructor (
    private readonly db: StateDb,
    private readonly writer: StateWriter,
    private readonly gatewayId: string,
    private readonly maxRows = 10_000,
    private readonly onAdded: () => void = () => {}
  ) {
    const newest = db.prepare(`SELECT id, device_id AS deviceId, topic, reason, payload, received_at AS receivedAt
      FROM dead_letters WHERE forwarded = 0 ORDER BY id DESC LIMIT ?`).all(MAX_WAITING) as Array<{ id: number, deviceId: string | null, topic: string, reason: string, payload: Buffer | null, receivedAt: number }>
    this.waiting = newest.reverse().map((row) => ({ id: row.id, letter: this.letter(row.deviceId ?? undefined, row.topic, row.reason, row.payload ?? Buffer.alloc(0), row.receivedAt) }))
    const last = db.prepare('SELECT max(id) AS id FROM dead_letters').get() as { id: number | null }
    this.nextId = (last.id ?? 0) + 1
  }

  add (entry: DeadLetterEntry): void {
    const id = this.nextId++
    const topic = entry.topic.slice(0, 512)
    const reason = entry.reason.slice(0, 500)
    const payload = withoutPin(entry.payload.subarray(0, 2 * KEEP_BYTES)).subarray(0, KEEP_BYTES)
    // A copy of its own: a view would take its whole backing buffer (the 64 KiB packet, or
    // Node's 8 KiB pool) across to the writer's thread. Sheddable: diagnostics must not fill
    // the memory while the disk hangs and a device sprays garbage.
    this.writer.writeSheddable({ sql: INSERT, params: [id, entry.deviceId ?? null, topic, reason, new Uint8Array(payload), entry.receivedAt] })
    // Prune now and then rather than on every insert: the bound is loose by design.
    if (id % 100 === 0) this.writer.writeSheddable({ sql: PRUNE, params: [id - this.maxRows] })
    if (this.waiting.push({ id, letter: this.letter(entry.deviceId, topic, reason, payload, entry.receivedAt) }) > MAX_WAITING) this.waiting.shift()
    this.onAdded()
  }

  /** The latest letters, newest first, once every letter added so far is on disk (diagnostics). */
  async recent (limit = 100): Promise<Array<{ deviceId: string | null, topic: string, reason: string, receivedAt: number }>> {
    await this.writer.flushed()
    return this.db.prepare('SELECT device_id AS deviceId, topic, reason, received_at AS receivedAt FROM dead_letters ORDER BY id DESC LIMIT ?').all(limit) as never
  }

  /** The oldest dead letters the server has not confirmed yet, in the ingest format. */
  peekUnforwarded (limit: number): Array<{ id: number, letter: DeadLetter }> {
    return this.waiting.slice(0, limit)
  }

  markForwarded (ids: number[]): void {
    if (ids.length === 0) return
    const done = new Set(ids)
    this.waiting = this.waiting.filter((entry) => !done.has(entry.id))
    // Sheddable too: lost, the letters are sent again after a restart, and the server keeps
    // each once (dead_letters_once).
    this.writer.writeSheddable({ sql: MARK_FORWARDED, params: [JSON.stringify(ids)] })
  }

  private letter (deviceId: string | undefined, topic: string, reason: string, payload: Buffer, receivedAt: number): DeadLetter {
    return {
      ...(deviceId ? { deviceId } : {}),
      gatewayId: this.gatewayId,
      // Topics may hold what is not valid text; keep them printable for the server's schema.
      topic: topic.slice(0, 512),
      reason,
      payload: payload.toString('base64'),
      receivedAt
    }
  }
}

/**
 * A malformed cancel still carries the shop owner's PIN: dead letters keep the shape, not the
 * PIN. Masked before the cut to KEEP_BYTES (a PIN the cut split would keep its first digits),
 * strings left open at the end included (so the bounded slice masked first, twice what is kept,
 * may split one too); the cut after it keeps what masking added (`"pin":1` becomes
 * `"pin":"****"`) within what the server takes.
 */
function withoutPin (payload: Buffer): Buffer {
  const text = payload.toString('latin1')
  return /"pin"/.test(text) ? Buffer.from(text.replace(/("pin"\s*:\s*)("(?:[^"\\]|\\.)*(?:"|\\?$)|-?\d+)/g, '$1"****"'), 'latin1') : payload
}
