/**
 * The durable outbox: accepted events wait here until the server has confirmed them.
 *
 * The disk work runs in a worker thread (worker.ts, store.ts). An fsync takes from half a
 * millisecond to several on ordinary disks; done on the main thread it stopped the whole broker
 * for that long, for every connection, several hundred times a second under load. Now the
 * main thread only hands records over and goes on parsing packets while the disk works.
 *
 * `append` is group-committed: the events accepted during one turn of the event loop, and all
 * those that arrive while a commit is in flight, go to the disk in the next transaction (one
 * fsync). Each caller's promise resolves only after that commit: the broker sends PUBACK then,
 * never before. While the outbox is over its bound (store.ts), `full` is true.
 *
 * `peek` answers from memory while a lane's waiting entries fit there (lane-tail.ts): the
 * forwarder's next batch is what the main thread has just handed over, so it need not be read
 * back from disk, and an alarm is sent without first waiting behind the commit in flight.
 */
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import type { GatewayEvent } from '../../protocol/index.js'
import type { StateDb } from '../state-db.js'
import type { StateWriter } from '../state-writer.js'
import type { OutboxReply, OutboxRequest, OutboxWorkerData } from './messages.js'
import { laneOf, type AppendResult, type Lane, type OutboxEntry, type OutboxLevel, type OutboxRecord } from './store.js'
import { LaneTail } from './lane-tail.js'

export type { AppendResult, Lane, OutboxEntry } from './store.js'

interface Pending {
  event: GatewayEvent
  resolve: (result: AppendResult) => void
  reject: (err: Error) => void
}

type Answered = Extract<OutboxReply, { ok: true }>

/** Entries a lane keeps in memory at most (lane-tail.ts); past it, the forwarder reads from disk. */
const TAIL_MAX = 10_000

export class OutboxError extends Error {
  constructor (message: string, readonly code?: string) {
    super(message)
  }
}

export class Outbox extends EventEmitter<{ appended: [lanes: ReadonlySet<Lane>], committed: [seconds: number], full: [boolean], shed: [GatewayEvent], evicted: [number], error: [Error] }> {
  private pending: Pending[] = []
  private appending = false
  /** When the write in flight was handed to the worker (performance.now()), while one is. */
  private appendingSince?: number
  private readonly waiting: Array<{ resolve: (reply: Answered) => void, reject: (err: Error) => void, onReply?: (reply: Answered) => void }> = []
  private readonly tails: Record<Lane, LaneTail> = { alarm: new LaneTail(TAIL_MAX), routine: new LaneTail(TAIL_MAX) }
  /** Per lane, for each read from disk still waiting for its answer: the ids removed since it was asked. */
  private readonly readsWaiting: Record<Lane, Set<Set<number>>> = { alarm: new Set(), routine: new Set() }
  private current: OutboxLevel
  private isFull = false
  private broken?: Error
  private closing = false

  /** Starts the worker and opens (or creates) `outbox.sqlite` in `dataDir`. */
  static async open (dataDir: string, maxEvents = 200_000): Promise<Outbox> {
    const worker = new Worker(new URL('../worker-bootstrap.mjs', import.meta.url), {
      workerData: { entry: new URL('./worker.ts', import.meta.url).href, dataDir, maxEvents } satisfies OutboxWorkerData & { entry: string },
      name: 'outbox'
    })
    // The outbox alone never keeps the process alive; `close` waits for its writes.
    worker.unref()
    const first = await new Promise<OutboxReply>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    if (!first.ok) {
      await worker.terminate()
      throw new OutboxError(`outbox could not be opened in ${dataDir}: ${first.error}`)
    }
    return new Outbox(worker, maxEvents, first.level)
  }

  private constructor (private readonly worker: Worker, readonly maxEvents: number, level: OutboxLevel) {
    super()
    this.current = level
    this.isFull = level.count >= maxEvents
    worker.on('message', (reply: OutboxReply) => this.answer(reply))
    worker.on('error', (err) => this.fail(err))
    worker.on('exit', (code) => this.fail(new OutboxError(`outbox worker exited (${code})`)))
  }

  append (event: GatewayEvent): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken)
      // Closing: the worker may already have closed the file, and would never answer.
      if (this.closing) return reject(new OutboxError('outbox closed'))
      if (this.pending.push({ event, resolve, reject }) === 1 && !this.appending) setImmediate(() => this.flush())
    })
  }

  /**
   * The oldest entries of a lane (alarms or routine events), in arrival order, of devices not
   * in `skip`: those with a request on its way, whose backlog (a flood of presses, say) must
   * not hide the other devices' alarms behind it.
   */
  async peek (lane: Lane, limit: number, skip?: ReadonlySet<string>): Promise<OutboxEntry[]> {
    const tail = this.tails[lane]
    const cached = tail.head(limit, skip)
    if (cached) return cached
    // Entries removed while this read waits its turn are still in its answer (the worker reads
    // before it removes): they must not come back, nor make the copy in memory whole.
    const removedMeanwhile = new Set<number>()
    this.readsWaiting[lane].add(removedMeanwhile)
    let entries: OutboxEntry[] = []
    const request = { op: 'peek' as const, lane, limit, ...(skip && skip.size > 0 ? { skip: [...skip] } : {}) }
    await this.call(request, (reply) => {
      const read = reply.entries ?? []
      entries = removedMeanwhile.size === 0 ? read : read.filter((e) => !removedMeanwhile.has(e.id))
      if (!request.skip) tail.read(entries, read.length < limit)
    }).finally(() => this.readsWaiting[lane].delete(removedMeanwhile))
    return entries
  }

  /** Forgets entries of a lane the server has confirmed. */
  async remove (lane: Lane, ids: number[]): Promise<void> {
    if (ids.length === 0) return
    this.tails[lane].removed(ids)
    for (const removedMeanwhile of this.readsWaiting[lane]) for (const id of ids) removedMeanwhile.add(id)
    await this.call({ op: 'remove', ids }).catch((err: Error) => {
      // Still on disk, gone from memory: only the disk tells the truth now.
      this.tails[lane].forget()
      throw err
    })
  }

  depth (): number {
    return this.current.count
  }

  get full (): boolean {
    return this.isFull
  }

  /**
   * How long the write in flight has waited for the disk, ms (0 when none is in flight). An
   * fsync takes a millisecond or so; one that takes seconds is a disk hanging (an SD card
   * wearing out, a failing drive), and every event behind it waits too.
   */
  writeWaitMs (): number {
    return this.appendingSince === undefined ? 0 : performance.now() - this.appendingSince
  }

  /** Receive time of the oldest waiting event (as of the last answer), or undefined when empty. */
  oldestReceivedAt (): number | undefined {
    return this.current.oldestReceivedAt ?? undefined
  }

  /** Waits for the writes already handed over, then closes the database and the worker. */
  async close (): Promise<void> {
    if (this.broken || this.closing) return
    this.closing = true
    // The worker may end before its answer is read; either way the database is closed.
    await this.call({ op: 'close' }).catch(() => {})
    this.broken ??= new OutboxError('outbox closed')
    // Whatever was handed over after the close (a write, a read) has no answer coming.
    for (const caller of this.waiting.splice(0)) caller.reject(this.broken)
    for (const p of this.pending.splice(0)) p.reject(this.broken)
    await this.worker.terminate()
  }

  private flush (): void {
    if (this.appending || this.pending.length === 0) return
    const batch = this.pending
    this.pending = []
    this.appending = true
    this.appendingSince = performance.now()
    const records = batch.map(({ event: e }): OutboxRecord => ({
      eventId: e.eventId, deviceId: e.deviceId, type: e.event.type, seq: e.event.seq, receivedAt: e.receivedAt, body: JSON.stringify(e)
    }))
    let grown: ReadonlySet<Lane> = new Set()
    this.call({ op: 'append', records }, (reply) => { grown = this.remember(records, reply) }).then((reply) => {
      batch.forEach((p, i) => {
        const result = reply.results?.[i] ?? 'stored'
        if (result === 'shed') this.emit('shed', p.event)
        p.resolve(result)
      })
      if (reply.evicted) this.emit('evicted', reply.evicted)
      if (reply.commitMs !== undefined) this.emit('committed', reply.commitMs / 1000)
      if (grown.size > 0) this.emit('appended', grown)
    }, (err: Error) => {
      for (const p of batch) p.reject(err)
    }).finally(() => {
      this.appending = false
      this.appendingSince = undefined
      // Whatever arrived during that commit goes in the next one, at once.
      this.flush()
    })
  }

  /**
   * Committed entries join their lane's tail, in the order the worker answered. Returns the
   * lanes that got new entries: those to wake (a shed event, or a redelivery of one still
   * waiting, adds nothing to send).
   */
  private remember (records: OutboxRecord[], reply: Answered): ReadonlySet<Lane> {
    // A full outbox made room by evicting heartbeats, which memory may still hold.
    if (reply.evicted) this.tails.routine.forget()
    const fresh: Record<Lane, OutboxEntry[]> = { alarm: [], routine: [] }
    records.forEach((record, i) => {
      const id = reply.ids?.[i]
      if (id) fresh[laneOf(record.type)].push({ ...record, id })
    })
    const grown = new Set<Lane>()
    for (const lane of ['alarm', 'routine'] as const) {
      if (fresh[lane].length === 0) continue
      this.tails[lane].committed(fresh[lane])
      grown.add(lane)
    }
    return grown
  }

  /**
   * Posts a request; `onReply` runs as soon as its answer arrives, before any later answer, so
   * the lane tails follow the disk in its own order.
   */
  private call (request: OutboxRequest, onReply?: (reply: Answered) => void): Promise<Answered> {
    if (this.broken) return Promise.reject(this.broken)
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject, onReply })
      this.worker.postMessage(request)
    })
  }

  private answer (reply: OutboxReply): void {
    const caller = this.waiting.shift()
    if (!reply.ok) {
      caller?.reject(new OutboxError(reply.error, reply.code))
      return
    }
    this.current = reply.level
    const full = reply.level.count >= this.maxEvents
    if (full !== this.isFull) {
      this.isFull = full
      this.emit('full', full)
    }
    caller?.onReply?.(reply)
    caller?.resolve(reply)
  }

  /** The worker is gone: nothing more can be made durable, so nothing more is acknowledged. */
  private fail (err: Error): void {
    if (this.broken) return
    // While closing, the worker ending is expected; whoever still waits must hear it either way.
    this.broken = this.closing ? new OutboxError('outbox closed') : err
    for (const caller of this.waiting.splice(0)) caller.reject(this.broken)
    for (const p of this.pending.splice(0)) p.reject(this.broken)
    // Unheard, this crashes the process, which is right: a gateway that can store nothing must
    // be restarted by its supervisor rather than hold connections it cannot serve.
    if (!this.closing) this.emit('error', err)
  }
}

/**
 * Before 0.3 the outbox was a table of the gateway's state database. Events still waiting
 * there when the gateway is upgraded are moved, in their order, before anything new arrives.
 */
export async function adoptLegacyOutbox (outbox: Outbox, db: StateDb, writer: StateWriter): Promise<number> {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get()
  if (!table) return 0
  const rows = db.prepare('SELECT body FROM outbox ORDER BY id').all() as Array<{ body: string }>
  for (let i = 0; i < rows.length; i += 5000) {
    await Promise.all(rows.slice(i, i + 5000).map((row) => outbox.append(JSON.parse(row.body) as GatewayEvent)))
  }
  // Moved and committed: only now may the old copies go (a crash before the drop moves them
  // again, and the new table ignores event ids it already has). By the writer's thread, the
  // one writing this database now.
  writer.write({ sql: 'DROP TABLE outbox', params: [] })
  return rows.length
}
