/**
 * The outbox's worker thread: owns `outbox.sqlite` and runs its requests one at a time, in the
 * order they were posted, answering each in that order. A failed write (disk full, I/O error)
 * is answered as an error and the worker goes on: the next request may succeed.
 */
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import { OutboxStore } from './store.js'
import type { OutboxReply, OutboxRequest, OutboxWorkerData } from './messages.js'

const { dataDir, maxEvents } = workerData as OutboxWorkerData
const port = parentPort!
let store: OutboxStore
try {
  store = new OutboxStore(dataDir, maxEvents)
  port.postMessage({ ok: true, level: store.level() } satisfies OutboxReply)
} catch (err) {
  port.postMessage({ ok: false, error: (err as Error).message } satisfies OutboxReply)
  process.exit(1)
}

port.on('message', (request: OutboxRequest) => {
  let reply: OutboxReply
  try {
    switch (request.op) {
      case 'append': {
        const started = performance.now()
        const appended = store.append(request.records)
        reply = { ok: true, ...appended, commitMs: performance.now() - started, level: store.level() }
        break
      }
      case 'peek': reply = { ok: true, entries: store.peek(request.lane, request.limit, request.skip), level: store.level() }; break
      case 'remove': store.remove(request.ids); reply = { ok: true, level: store.level() }; break
      case 'close': store.close(); port.postMessage({ ok: true, level: { count: 0, oldestReceivedAt: null } } satisfies OutboxReply); port.close(); return
    }
  } catch (err) {
    reply = { ok: false, error: (err as Error).message, code: (err as { code?: string }).code }
  }
  port.postMessage(reply)
})
