/**
 * Writes to the state database (gateway.sqlite) from a thread of its own
 * (state-writer-worker.ts). The broker's thread reads the database at start-up and then keeps
 * what it needs in memory; every later write is posted here and runs in the thread, in order.
 *
 * Why: a write, even without fsync, waits for the filesystem's journal, and on a disk that
 * hangs (an SD card wearing out, a failing drive) the journal waits with it. A presence change
 * or a dead letter written on the broker's thread then stopped every connection, and every
 * press, until the disk came back; alarms are meant to reach the server from memory meanwhile
 * (pipeline/persist.ts). The thread also checkpoints the WAL every `checkpointEveryMs`.
 *
 * Bounded: while the disk hangs nothing is written, and what waits is held in memory. Past
 * `maxWaiting` writes waiting, those posted as sheddable (dead letters: diagnostics) are
 * dropped and counted; the rest (presence, credentials, positions) is small and bounded by
 * what it mirrors. Past `maxInFlight` writes handed to the thread, the next ones wait here
 * instead, in order; there a write posted with a key (`writeLatest`: the row of one alert's
 * state, say) takes the place of the one of the same key still waiting, so what waits for a
 * hung disk grows with the keys written, not with every write to each.
 */
import { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { LogBudget } from '../server/log-budget.js'
import { settlesWithin } from './retry.js'

/** One statement and its parameters; the SQL lives with the module that owns the table. */
export interface Write { sql: string, params: unknown[] }

export interface StateWriterData {
  file: string
  checkpointEveryMs: number
  busyTimeoutMs: number
  retryMs: number
}

export type StateWriterRequest = { op: 'write', n: number, writes: Write[] } | { op: 'close', n: number, giveUpAt: number }
export type StateWriterReply =
  | { op: 'written', upTo: number }
  | { op: 'failing', error: string }
  | { op: 'recovered' }
  | { op: 'dropped', error: string, sql: string[] }

export interface StateWriterOptions {
  /** What a power cut can take of the state database. */
  checkpointEveryMs?: number
  busyTimeoutMs?: number
  /** How soon a write the disk refused is tried again. */
  retryMs?: number
  /** How long `close` waits for the writes still queued (a hung disk must not hold the stop). */
  closeWaitMs?: number
  /** Writes waiting past which sheddable ones are dropped. */
  maxWaiting?: number
  /** Writes handed to the thread and not yet committed past which the next wait here (where a keyed one can be replaced). */
  maxInFlight?: number
}

/** A write not yet handed to the thread; `key` when a later write of the same key replaces it. */
interface Held { writes: Write[], key?: string }

export class StateWriter extends EventEmitter<{ failing: [Error], recovered: [], shed: [] }> {
  private readonly worker: Worker
  private posted = 0
  private written = 0
  /** Since when writes have waited without the thread confirming any (undefined: none wait). */
  private stuckSince?: number
  private readonly waiters: Array<{ n: number, resolve: () => void }> = []
  private closed = false
  private ended = false
  private readonly exited: Promise<void>
  private readonly closeWaitMs: number
  private readonly maxWaiting: number
  private readonly maxInFlight: number
  /** Writes waiting here, in order, until the thread is within `maxInFlight` again. */
  private held: Held[] = []
  private readonly heldByKey = new Map<string, Held>()
  private readonly droppedLines: LogBudget

  constructor (file: string, private readonly log: Logger, options: StateWriterOptions = {}) {
    super()
    this.closeWaitMs = options.closeWaitMs ?? 5000
    this.maxWaiting = options.maxWaiting ?? 10_000
    this.maxInFlight = options.maxInFlight ?? 100
    this.droppedLines = new LogBudget(3, 60_000, (_, lines) => log.error({ notLogged: lines }, 'more state database writes refused and dropped'))
    this.worker = new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
      workerData: {
        entry: new URL('./state-writer-worker.ts', import.meta.url).href,
        file,
        checkpointEveryMs: options.checkpointEveryMs ?? 2000,
        busyTimeoutMs: options.busyTimeoutMs ?? 5000,
        retryMs: options.retryMs ?? 1000
      } satisfies StateWriterData & { entry: string },
      name: 'state-db writer'
    })
    // The writer alone never keeps the process alive; `close` waits for its writes.
    this.worker.unref()
    // Not events.once: that would reject on the worker's 'error', unheard until the close.
    this.exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()))
    this.worker.on('message', (reply: StateWriterReply) => this.answer(reply))
    this.worker.on('error', (err) => log.error({ err: err.message }, 'state database writer failed'))
    this.worker.on('exit', () => {
      this.ended = true
      if (!this.closed) log.error({ unwritten: this.waiting() }, 'state database writer ended: state changes are no longer saved')
      this.held = []
      this.heldByKey.clear()
      this.release(Infinity)
    })
  }

  /** Queues `writes` as one transaction, after everything queued before. */
  write (...writes: Write[]): void {
    this.post(writes)
  }

  /**
   * As `write`, for a write that makes any earlier one of the same `key` moot (an upsert or a
   * delete of one row): while it waits behind a disk that hangs, a later write of the key takes
   * its place in the queue (the place of the earlier, so nothing queued after that one can
   * commit before it).
   */
  writeLatest (key: string, write: Write): void {
    const waiting = this.heldByKey.get(key)
    if (waiting && !this.closed && !this.ended) waiting.writes = [write]
    else this.post([write], key)
  }

  /** As `write`, but dropped (and counted) while the thread is `maxWaiting` writes behind. */
  writeSheddable (...writes: Write[]): void {
    if (this.waiting() >= this.maxWaiting) {
      this.emit('shed')
      return
    }
    this.post(writes)
  }

  /** Writes queued and not yet committed. */
  waiting (): number {
    return this.posted - this.written + this.held.length
  }

  /**
   * How long writes have waited without the thread confirming any, ms (0 when none wait). On a
   * working disk a few milliseconds; seconds mean the disk hangs.
   */
  waitMs (): number {
    return this.stuckSince === undefined ? 0 : Date.now() - this.stuckSince
  }

  /** Resolves once everything queued so far is committed (or the writer is gone). */
  flushed (): Promise<void> {
    // What waits here is handed on in order, numbered as it goes.
    const n = this.posted + this.held.length
    if (this.written >= n || this.ended) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ n, resolve }))
  }

  /**
   * Writes what is queued, then closes the thread's connection. What the disk still refuses
   * after `closeWaitMs` is given up. Resolves whether the thread closed its connection: not when
   * the disk hangs and the thread with it. Then it is left running: better-sqlite3 aborts the
   * whole process when its thread is terminated in the middle of a statement, and so would a
   * normal exit, which terminates and joins every thread (see gateway/main.ts).
   */
  async close (): Promise<boolean> {
    if (!this.closed) {
      this.closed = true
      this.handHeld(Infinity)
      this.worker.postMessage({ op: 'close', n: this.posted, giveUpAt: Date.now() + this.closeWaitMs } satisfies StateWriterRequest)
    }
    const ended = await settlesWithin(this.exited, this.closeWaitMs + 2000)
    if (this.waiting() > 0) this.log.error({ unwritten: this.waiting() }, 'state database writes still waiting for the disk at shutdown: given up')
    return ended
  }

  private post (writes: Write[], key?: string): void {
    if (writes.length === 0) return
    if (this.closed || this.ended) {
      if (this.droppedLines.allows('after close')) this.log.warn({ sql: writes.map((w) => w.sql.slice(0, 80)) }, 'state written after the writer closed: not saved')
      return
    }
    if (this.held.length > 0 || this.posted - this.written >= this.maxInFlight) {
      const entry: Held = key === undefined ? { writes } : { writes, key }
      this.held.push(entry)
      if (key !== undefined) this.heldByKey.set(key, entry)
      return
    }
    this.hand(writes)
  }

  private hand (writes: Write[]): void {
    if (this.posted === this.written) this.stuckSince = Date.now()
    this.worker.postMessage({ op: 'write', n: ++this.posted, writes } satisfies StateWriterRequest)
  }

  /** Hands the thread what waits here, oldest first, until `maxInFlight` are in its hands. */
  private handHeld (limit = this.maxInFlight): void {
    const room = limit - (this.posted - this.written)
    if (room <= 0 || this.held.length === 0) return
    const next = this.held.splice(0, room)
    for (const entry of next) {
      if (entry.key !== undefined) this.heldByKey.delete(entry.key)
      this.hand(entry.writes)
    }
  }

  private answer (reply: StateWriterReply): void {
    switch (reply.op) {
      case 'written':
        this.written = Math.max(this.written, reply.upTo)
        this.handHeld()
        this.stuckSince = this.written >= this.posted ? undefined : Date.now()
        this.release(this.written)
        break
      case 'failing': this.emit('failing', new Error(reply.error)); break
      case 'recovered': this.emit('recovered'); break
      case 'dropped':
        if (this.droppedLines.allows('dropped')) this.log.error({ err: reply.error, sql: reply.sql }, 'state database write refused: dropped')
        break
    }
  }

  private release (upTo: number): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i]!
      if (waiter.n <= upTo) {
        this.waiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }
}
