/**
 * The outbox's worker thread: owns `outbox.sqlite` and runs its requests one at a time, in the
 * order they were posted, answering each in that order. A failed write (disk full, I/O error)
 * is answered as an error and the worker goes on: the next request may succeed.
 *
 * Appends that queued up while a commit was running are taken together and share the next
 * transaction (one fsync), without first going back to the main thread: an event that arrives
 * during a commit waits for that commit and its own, never also for a round trip between threads.
 */
import { performance } from 'node:perf_hooks'
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads'
import { OutboxStore, type OutboxRecord } from './store.js'
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

port.on('message', (first: OutboxRequest) => {
  const queued = [first]
  for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port)) queued.push(next.message as OutboxRequest)
  for (let i = 0; i < queued.length;) {
    const request = queued[i]!
    if (request.op === 'append') {
      // This append and the ones right behind it: one transaction.
      let end = i + 1
      while (end < queued.length && queued[end]!.op === 'append') end++
      appendTogether(queued.slice(i, end) as Array<Extract<OutboxRequest, { op: 'append' }>>)
      i = end
      continue
    }
    if (request.op === 'close') {
      store.close()
      port.postMessage({ ok: true, level: { count: 0, oldestReceivedAt: null } } satisfies OutboxReply)
      port.close()
      return
    }
    port.postMessage(answer(() => request.op === 'peek'
      ? { entries: store.peek(request.lane, request.limit) }
      : (store.remove(request.ids), {})))
    i++
  }
})

/** Answers each append request with its own results; the transaction's time goes with the first. */
function appendTogether (requests: Array<{ records: OutboxRecord[] }>): void {
  const started = performance.now()
  let appended: ReturnType<OutboxStore['append']>
  try {
    appended = store.append(requests.length === 1 ? requests[0]!.records : requests.flatMap((r) => r.records))
  } catch (err) {
    const failed = failure(err)
    for (let i = 0; i < requests.length; i++) port.postMessage(failed)
    return
  }
  const commitMs = performance.now() - started
  const level = store.level()
  let offset = 0
  requests.forEach((r, i) => {
    const results = appended.results.slice(offset, offset += r.records.length)
    port.postMessage({ ok: true, results, level, ...(i === 0 ? { commitMs, evicted: appended.evicted } : {}) } satisfies OutboxReply)
  })
}

function answer (run: () => Partial<Extract<OutboxReply, { ok: true }>>): OutboxReply {
  try {
    return { ok: true, ...run(), level: store.level() }
  } catch (err) {
    return failure(err)
  }
}

function failure (err: unknown): OutboxReply {
  return { ok: false, error: (err as Error).message, code: (err as { code?: string }).code }
}
