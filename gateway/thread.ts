/**
 * Runs the gateway in a worker thread (thread-entry.ts), for `npm start`: the server's embedded
 * PGlite computes and writes on the main thread, and a batch it stores (or a disk it waits for)
 * must not hold every device's PUBACK. Alone (`npm run gateway`) the gateway needs none of this.
 */
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { GatewayConfig } from './config.js'
import type { RunningGateway } from './gateway.js'

export interface GatewayThreadData { config: GatewayConfig, logLevel: string }

export type GatewayThreadReply =
  | { op: 'started', ports: RunningGateway['ports'] }
  | { op: 'stopped', clean: boolean }
  /** A start error; its system fields (`code`, `path`…) travel too, for a readable line (server/boot-errors.ts). */
  | { op: 'failed', message: string, name: string, fields?: Record<string, string | number> }

export interface GatewayThread {
  ports: RunningGateway['ports']
  /** Stops the gateway; `clean` is false when a thread of it was left waiting for a hung disk. */
  stop(): Promise<{ clean: boolean }>
}

/**
 * Starts it; rejects with its start error. `onDied` is told if the thread ends on its own (an
 * uncaught error): the system is then without its gateway and should end, to be restarted.
 */
export function startGatewayInThread (config: GatewayConfig, log: Logger, onDied: (why: string) => void): Promise<GatewayThread> {
  const worker = new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
    workerData: { entry: new URL('./thread-entry.ts', import.meta.url).href, config, logLevel: log.level } satisfies GatewayThreadData & { entry: string },
    name: 'gateway'
  })
  let started = false
  let stopping = false
  return new Promise((resolve, reject) => {
    worker.once('message', (reply: GatewayThreadReply) => {
      started = reply.op === 'started'
      if (reply.op !== 'started') {
        void worker.terminate()
        return reject(Object.assign(new Error(reply.op === 'failed' ? reply.message : 'gateway thread answered out of turn'),
          reply.op === 'failed' ? { ...reply.fields, name: reply.name } : {}))
      }
      resolve({
        ports: reply.ports,
        stop () {
          stopping = true
          return new Promise((resolve) => {
            worker.once('message', (stopped: GatewayThreadReply) => resolve({ clean: stopped.op === 'stopped' && stopped.clean }))
            worker.once('exit', () => resolve({ clean: false }))
            worker.postMessage('stop')
          })
        }
      })
    })
    worker.on('error', (err) => {
      log.error({ err }, 'gateway thread failed')
      reject(err)
    })
    worker.once('exit', (code) => {
      reject(new Error(`gateway thread exited (${code}) before it started`))
      if (started && !stopping) onDied(`gateway thread exited (${code})`)
    })
  })
}
