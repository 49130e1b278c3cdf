/**
 * The gateway's operations endpoint: `GET /healthz` (liveness and what a maintainer looks at
 * first: always 200, its body says what is wrong), `GET /readyz` (listening, and what devices
 * send here reaches the server without anyone stepping in: 503 while stopping or while the
 * server refuses the gateway's token, readiness.ts), `GET /metrics` (Prometheus).
 * Plain node:http: three read-only routes do not need a framework.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { GatewayMetrics } from './metrics.js'

export interface HealthSource {
  /** Facts for `/healthz`; `ready` false answers 503 on `/readyz`. */
  health(): { ready: boolean, [key: string]: unknown }
}

export async function serveOperations (host: string, port: number, metrics: GatewayMetrics, source: HealthSource): Promise<{ port: number, close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET') return res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 405, code: 'METHOD_NOT_ALLOWED', message: 'GET only' }))
    if (path === '/metrics') {
      metrics.scrape().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message))
      return
    }
    if (path === '/healthz' || path === '/readyz') {
      let body: ReturnType<HealthSource['health']>
      try {
        body = source.health()
      } catch (err) {
        body = { ready: false, error: (err as Error).message }
      }
      const status = path === '/readyz' && !body.ready ? 503 : 200
      return res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ status: body.ready ? 'ok' : 'degraded', ...body }))
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 404, code: 'NOT_FOUND', message: `no route ${path}` }))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}
