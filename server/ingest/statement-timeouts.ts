/**
 * A batch whose statement PostgreSQL cancels at its statement timeout (SQLSTATE 57014: 15 s,
 * postgres.ts). A batch that truly takes longer (5 000 events on a database slowed down) failed
 * the same way at every resend: its gateway sent it again forever, and nothing more came
 * through from it. The cancelled statement (or the transaction around it) stored nothing, so
 * the batch is stored again in parts, each in statements of its own, each half as large: what
 * the database refuses for good is told apart there as in any batch (refusals.ts); a timeout is
 * not such a refusal, and never makes a dead letter: a part of one item still cancelled fails
 * the request, and the gateway sends the batch again (what was stored meanwhile is then a
 * duplicate, stored once). PGlite has no statement timeout; this is for PostgreSQL.
 */
import type { IngestBatch } from '../../protocol/index.js'
import { itemsIn, partsOf } from './batch-parts.js'

/**
 * Statement timeouts one request stores past by splitting; the next fails it. The gateway gave
 * up waiting after 30 s anyway (what is stored after that still counts: its resend finds it),
 * and a part too large after three halvings (each part an eighth) is rarer than statements held
 * up by something else, a lock held elsewhere, which no split helps: such a request holds a
 * connection four timeouts long (a minute at 15 s), not the 13 a split down to single events
 * of a full batch would take.
 */
export const TIMEOUTS_SPLIT_PER_REQUEST = 3

/**
 * The statement was cancelled: by its statement timeout, or by an administrator
 * (pg_cancel_backend, the same code). Either way nothing of it was stored, and a smaller part may
 * pass.
 */
export function cancelledStatement (err: unknown): boolean {
  return (err as { code?: unknown }).code === '57014'
}

/** One request's statement timeouts, and what they taught: how large a part is too large. */
export class StatementTimeouts {
  private met = 0
  /** The fewest items of a part whose statement was cancelled. */
  private smallestCancelled = Infinity

  /**
   * A part at least as large as one cancelled already in this request is split without being
   * tried: each try costs a whole timeout, and so a request meets only as many as halvings it
   * needs, one per size.
   */
  splitUntried (batch: IngestBatch): IngestBatch[] | undefined {
    return itemsIn(batch) >= this.smallestCancelled ? partsOf(batch) : undefined
  }

  /** After `err` storing `batch`: the parts to store instead, or undefined when `err` stands. */
  partsAfter (err: unknown, batch: IngestBatch): IngestBatch[] | undefined {
    if (!cancelledStatement(err)) return undefined
    this.met++
    const parts = partsOf(batch)
    if (!parts || this.met > TIMEOUTS_SPLIT_PER_REQUEST) return undefined
    this.smallestCancelled = Math.min(this.smallestCancelled, itemsIn(batch))
    return parts
  }

  /** How many statements of this request were cancelled. */
  get count (): number {
    return this.met
  }
}
