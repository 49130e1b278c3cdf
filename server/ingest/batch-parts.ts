/** How a batch the database could not take whole is cut into parts (refusals.ts, statement-timeouts.ts). */
import type { IngestBatch } from '../../protocol/index.js'

/**
 * The parts to store `batch` in, in order, or undefined when it holds one item (or none): its
 * events first, in their order (a cancel after the press it cancels), apart from the side lists
 * (presence changes, dead letters); then each list in halves.
 */
export function partsOf (batch: IngestBatch): IngestBatch[] | undefined {
  const { events, presence = [], deadLetters = [] } = batch
  if (events.length > 0 && presence.length + deadLetters.length > 0) return [{ events }, { events: [], presence, deadLetters }]
  if (events.length > 1) return halves(events).map((part) => ({ events: part }))
  if (events.length === 1) return undefined
  if (presence.length > 0 && deadLetters.length > 0) return [{ events: [], presence }, { events: [], deadLetters }]
  if (presence.length > 1) return halves(presence).map((part) => ({ events: [], presence: part }))
  if (deadLetters.length > 1) return halves(deadLetters).map((part) => ({ events: [], deadLetters: part }))
  return undefined
}

/** Events, presence changes and dead letters: what a batch's statements have to write. */
export function itemsIn (batch: IngestBatch): number {
  return batch.events.length + (batch.presence?.length ?? 0) + (batch.deadLetters?.length ?? 0)
}

function halves<T> (items: T[]): [T[], T[]] {
  const middle = Math.ceil(items.length / 2)
  return [items.slice(0, middle), items.slice(middle)]
}
