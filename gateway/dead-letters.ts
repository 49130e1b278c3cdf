/** Publishes we refused, kept with the reason so a maintainer can see what a device sent. */
import type { StateDb } from './state-db.js'

/** Enough of a payload to diagnose it; a flood of huge garbage must not fill the disk. */
const KEEP_BYTES = 4096

export class DeadLetters {
  private readonly insert

  constructor (private readonly db: StateDb) {
    this.insert = db.prepare('INSERT INTO dead_letters (device_id, topic, reason, payload, received_at) VALUES (?, ?, ?, ?, ?)')
  }

  add (entry: { deviceId?: string, topic: string, reason: string, payload: Buffer, receivedAt: number }): void {
    this.insert.run(entry.deviceId ?? null, entry.topic.slice(0, 512), entry.reason, entry.payload.subarray(0, KEEP_BYTES), entry.receivedAt)
  }

  recent (limit = 100): Array<{ deviceId: string | null, topic: string, reason: string, receivedAt: number }> {
    return this.db.prepare('SELECT device_id AS deviceId, topic, reason, received_at AS receivedAt FROM dead_letters ORDER BY id DESC LIMIT ?').all(limit) as never
  }
}
