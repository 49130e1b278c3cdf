/**
 * The gateway in a worker thread of its own (started by `startGatewayInThread`, thread.ts):
 * under `npm start`, where the server's embedded PGlite runs on the main thread, so the
 * broker's thread never waits for a database query or its disk.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { pino } from 'pino'
import { startGateway } from './gateway.js'
import type { GatewayThreadData, GatewayThreadReply } from './thread.js'

const { config, logLevel } = workerData as GatewayThreadData
const port = parentPort!
const log = pino({ level: logLevel, name: 'gateway' })

try {
  const gateway = await startGateway(config, log)
  port.postMessage({ op: 'started', ports: gateway.ports } satisfies GatewayThreadReply)
  port.once('message', () => {
    gateway.stop().then(
      ({ clean }) => port.postMessage({ op: 'stopped', clean } satisfies GatewayThreadReply),
      (err: Error) => {
        log.error({ err }, 'gateway stop failed')
        port.postMessage({ op: 'stopped', clean: false } satisfies GatewayThreadReply)
      })
  })
} catch (err) {
  const e = err as Error & Record<string, unknown>
  const fields = Object.fromEntries(['code', 'path', 'hostname', 'address', 'port', 'syscall']
    .filter((key) => typeof e[key] === 'string' || typeof e[key] === 'number').map((key) => [key, e[key] as string | number]))
  port.postMessage({ op: 'failed', message: e.message, name: e.name, fields } satisfies GatewayThreadReply)
}
