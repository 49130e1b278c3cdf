/**
 * A pool of load-generator processes: connections are split across them, every step runs on
 * all of them at once, results are merged. Their pids are known, so their CPU is reported too.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ConnSpec, RunResult, WorkerReply, WorkerRequest } from './protocol.js'

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const workerFile = fileURLToPath(new URL('./worker.ts', import.meta.url))

export interface MergedRun extends Omit<RunResult, 'puback' | 'received'> {
  puback: number[]
  received: number[]
}

export class LoadPool {
  private constructor (private readonly workers: ChildProcess[]) {}

  static start (size: number): LoadPool {
    // BENCH_PROFILE=dir: the load generators are profiled too, like the gateway and the server.
    const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []
    const workers = Array.from({ length: size }, () => fork(workerFile, [], { execArgv: [...profile, '--import', tsxLoader], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    return new LoadPool(workers)
  }

  get pids (): number[] {
    return this.workers.map((w) => w.pid!)
  }

  /** Connections dealt round-robin over the workers. */
  async connect (port: number, conns: ConnSpec[], concurrency = 64): Promise<{ ms: number, failed: number, open: number, firstError?: string }> {
    const shares = this.workers.map((_, i) => conns.filter((_, j) => j % this.workers.length === i))
    const started = performance.now()
    const replies = await Promise.all(this.workers.map((w, i) => ask(w, { type: 'connect', port, conns: shares[i]!, concurrency })))
    let failed = 0
    let open = 0
    let firstError: string | undefined
    for (const r of replies) {
      if (r.type !== 'connected') throw new Error(`unexpected ${r.type}`)
      failed += r.failed
      open += r.open
      firstError ??= r.firstError
    }
    return { ms: performance.now() - started, failed, open, firstError }
  }

  /** The offered `rate` (messages/s over all workers) for `durationMs`. */
  async run (rate: number, durationMs: number, payload: 'event' | 'reference', drainMs = 10_000, pressEvery = 0): Promise<MergedRun> {
    const replies = await Promise.all(this.workers.map((w) => ask(w, { type: 'run', rate: rate / this.workers.length, durationMs, payload, drainMs, pressEvery })))
    const merged: MergedRun = { sent: 0, acked: 0, failed: 0, unacked: 0, offeredMs: 0, worstLagMs: 0, cpuUs: 0, puback: [], received: [], receivedPress: [] }
    for (const r of replies) {
      if (r.type !== 'ran') throw new Error(`unexpected ${r.type}`)
      const x = r.result
      merged.sent += x.sent
      merged.acked += x.acked
      merged.failed += x.failed
      merged.unacked += x.unacked
      merged.cpuUs += x.cpuUs
      merged.offeredMs = Math.max(merged.offeredMs, x.offeredMs)
      merged.worstLagMs = Math.max(merged.worstLagMs, x.worstLagMs)
      for (const v of x.puback) merged.puback.push(v)
      for (const v of x.received) merged.received.push(v)
      for (const v of x.receivedPress) merged.receivedPress.push(v)
    }
    return merged
  }

  /** Late acks/deliveries, waiting up to `waitMs` for the expected totals. */
  async collect (waitMs: number, expect: { delivered?: number, received?: number } = {}): Promise<{ delivered: number[], deliveredCount: number, received: number[], receivedPress: number[] }> {
    const n = this.workers.length
    const replies = await Promise.all(this.workers.map((w) => ask(w, {
      type: 'collect', waitMs, expectDelivered: Math.ceil((expect.delivered ?? 0) / n), expectReceived: Math.floor((expect.received ?? 0) / n)
    })))
    const out = { delivered: [] as number[], deliveredCount: 0, received: [] as number[], receivedPress: [] as number[] }
    for (const r of replies) {
      if (r.type !== 'collected') throw new Error(`unexpected ${r.type}`)
      for (const v of r.delivered) out.delivered.push(v)
      for (const v of r.received) out.received.push(v)
      for (const v of r.receivedPress) out.receivedPress.push(v)
      out.deliveredCount += r.deliveredCount
    }
    return out
  }

  async close (): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      if (w.exitCode !== null || !w.connected) return
      const gone = new Promise((resolve) => w.once('exit', resolve))
      w.send({ type: 'close' } satisfies WorkerRequest)
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 5000))])
      if (w.exitCode === null) w.kill('SIGKILL')
    }))
  }
}

function ask (worker: ChildProcess, request: WorkerRequest): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      worker.off('exit', onExit)
      if (reply.type === 'error') reject(new Error(reply.message))
      else resolve(reply)
    }
    const onExit = (code: number | null) => { worker.off('message', onMessage); reject(new Error(`load worker exited (${code})`)) }
    worker.once('message', onMessage)
    worker.once('exit', onExit)
    worker.send(request)
  })
}
