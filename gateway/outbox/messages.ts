/** What the main thread and the outbox worker say to each other (answers come in request order). */
import type { AppendResult, Lane, OutboxEntry, OutboxLevel, OutboxRecord } from './store.js'

export interface OutboxWorkerData {
  dataDir: string
  maxEvents: number
}

export type OutboxRequest =
  | { op: 'append', records: OutboxRecord[] }
  | { op: 'peek', lane: Lane, limit: number, skip?: string[] }
  | { op: 'remove', ids: number[] }
  | { op: 'close' }

export type OutboxReply =
  | { ok: true, level: OutboxLevel, results?: AppendResult[], ids?: number[], evicted?: number, commitMs?: number, entries?: OutboxEntry[] }
  | { ok: false, error: string, code?: string }
