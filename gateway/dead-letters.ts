/**
 * Publishes we refused, kept with the reason so a maintainer can see what a device sent, and
 * forwarded to the server (`deadLetters` in the ingest batch) so it is visible fleet-wide.
 * Bounded: a device spraying garbage must not fill the disk.
 */
import type { DeadLetter } from '../protocol/index.js'
import type { StateDb } from './state-db.js'

/** Enough of a payload to diagnose it. */
const KEEP_BYTES = 4096

export interface DeadLetterEntry { deviceId?: string, topic: string, reason: string, payload: Buffer, receivedAt: number }

export class DeadLetters {
  private readonly insert
  // Prepared once: the forwarder asks for unforwarded letters on every routine round.
  private readonly selectUnforwarded
  private readonly markOne
  private inserted = 0

  constructor (private readonly db: StateDb, private readonly gatewayId: string, private readonly maxRows = 10_000, private readonly onAdded: () => void = () => {}) {
    this.insert = db.prepare('INSERT INTO dead_letters (device_id, topic, reason, payload, received_at) VALUES (?, ?, ?, ?, ?)')
    this.selectUnforwarded = db.prepare(`SELECT id, device_id AS deviceId, topic, reason, payload, received_at AS receivedAt
      FROM dead_letters WHERE forwarded = 0 ORDER BY id LIMIT ?`)
    this.markOne = db.prepare('UPDATE dead_letters SET forwarded = 1 WHERE id = ?')
  }

  add (entry: DeadLetterEntry): void {
    this.insert.run(entry.deviceId ?? null, entry.topic.slice(0, 512), entry.reason.slice(0, 500), withoutPin(entry.payload.subarray(0, 2 * KEEP_BYTES)).subarray(0, KEEP_BYTES), entry.receivedAt)
    // Prune now and then rather than on every insert: the bound is loose by design.
    if (++this.inserted % 100 === 0) {
      this.db.prepare('DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?').run(this.maxRows)
    }
    this.onAdded()
  }

  recent (limit = 100): Array<{ deviceId: string | null, topic: string, reason: string, receivedAt: number }> {
    return this.db.prepare('SELECT device_id AS deviceId, topic, reason, received_at AS receivedAt FROM dead_letters ORDER BY id DESC LIMIT ?').all(limit) as never
  }

  /** The oldest dead letters the server has not confirmed yet, in the ingest format. */
  peekUnforwarded (limit: number): Array<{ id: number, letter: DeadLetter }> {
    const rows = this.selectUnforwarded.all(limit) as Array<{ id: number, deviceId: string | null, topic: string, reason: string, payload: Buffer | null, receivedAt: number }>
    return rows.map((row) => ({
      id: row.id,
      letter: {
        ...(row.deviceId ? { deviceId: row.deviceId } : {}),
        gatewayId: this.gatewayId,
        // Topics may hold what is not valid text; keep them printable for the server's schema.
        topic: row.topic.slice(0, 512),
        reason: row.reason,
        payload: (row.payload ?? Buffer.alloc(0)).toString('base64'),
        receivedAt: row.receivedAt
      }
    }))
  }

  markForwarded (ids: number[]): void {
    if (ids.length === 0) return
    this.db.transaction(() => { for (const id of ids) this.markOne.run(id) })()
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
