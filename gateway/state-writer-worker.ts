/**
 * The state database's writer thread (started by `StateWriter`, state-writer.ts). It alone
 * writes gateway.sqlite after start-up, so the broker's thread never waits for the disk: on
 * ext4 a write waits for the journal, and a disk that hangs holds the journal as long.
 *
 * Each message is one transaction, run in the order posted. A write the disk refuses (full,
 * I/O error, locked) is tried again every second, with everything after it waiting behind it:
 * order is kept (a presence change is never deleted before it is written). A write SQLite
 * refuses for what it says (a constraint) is dropped, reported, and the rest goes on.
 * Every `checkpointEveryMs` the WAL is copied into the file and synced: what a power cut can
 * take is that long.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Sqlite from 'better-sqlite3'
import type { StateWriterData, StateWriterReply, StateWriterRequest, Write } from './state-writer.js'

const { file, checkpointEveryMs, busyTimeoutMs, retryMs } = workerData as StateWriterData
const port = parentPort!
const db = new Sqlite(file)
// NORMAL, as state-db.ts explains: a commit survives the process's crash at once.
db.pragma('synchronous = NORMAL')
db.pragma(`busy_timeout = ${busyTimeoutMs}`)

const statements = new Map<string, Sqlite.Statement>()
const run = db.transaction((writes: Write[]) => {
  for (const { sql, params } of writes) {
    let statement = statements.get(sql)
    if (!statement) statements.set(sql, statement = db.prepare(sql))
    statement.run(...params.map(bindable))
  }
})

const waiting: StateWriterRequest[] = []
let retry: NodeJS.Timeout | undefined
let failing = false

port.on('message', (request: StateWriterRequest) => {
  waiting.push(request)
  if (!retry) drain()
})

function drain (): void {
  retry = undefined
  let written: number | undefined
  while (waiting.length > 0) {
    const request = waiting[0]!
    if (request.op === 'close') return close(written)
    if (pastClosing()) {
      // Asked to close, and its wait is over: the rest is given up without trying (each try
      // could wait for the disk as long again).
      report({ op: 'dropped', error: 'given up at shutdown', sql: request.writes.map((w) => w.sql.slice(0, 80)) })
    } else {
      try {
        run(request.writes)
        if (failing) {
          failing = false
          report({ op: 'recovered' })
        }
      } catch (err) {
        if (transient(err) && !pastClosing()) {
          if (written !== undefined) report({ op: 'written', upTo: written })
          if (!failing) report({ op: 'failing', error: (err as Error).message })
          failing = true
          // Asked to close: the last try comes by the deadline, not a retry later.
          const close = waiting.at(-1)
          retry = setTimeout(drain, close?.op === 'close' ? Math.max(0, Math.min(retryMs, close.giveUpAt - Date.now())) : retryMs)
          return
        }
        report({ op: 'dropped', error: (err as Error).message, sql: request.writes.map((w) => w.sql.slice(0, 80)) })
      }
    }
    waiting.shift()
    written = request.n
  }
  if (written !== undefined) report({ op: 'written', upTo: written })
}

/** Asked to close, and the wait it was given is over. */
function pastClosing (): boolean {
  const close = waiting.at(-1)
  return close?.op === 'close' && Date.now() >= close.giveUpAt
}

function close (written: number | undefined): void {
  clearInterval(checkpoints)
  db.close()
  if (written !== undefined) report({ op: 'written', upTo: written })
  port.close()
}

function report (reply: StateWriterReply): void {
  port.postMessage(reply)
}

const checkpoints = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch {
    // Busy or failing disk: the next tick tries again; writes report their own errors.
  }
}, checkpointEveryMs)

/** Errors of the disk or of another connection, which pass; not errors in the write itself. */
function transient (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && /^SQLITE_(IOERR|FULL|BUSY|LOCKED|CANTOPEN|NOMEM|PROTOCOL|READONLY)/.test(code)
}

/** A Buffer arrives as a plain Uint8Array (structured clone): SQLite takes it as a BLOB again. */
function bindable (value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value
}
