/**
 * The real system for tests: server (fresh storage) and gateway (fresh outbox) on ephemeral
 * ports, talking over real sockets, plus small helpers to act as an admin, operator or device.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { pino, type Logger } from 'pino'
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt'
import { startServer, type RunningServer } from '../../server/server.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import type { GatewayConfig } from '../../gateway/config.js'
import type { ServerConfig } from '../../server/config.js'
import { topics, type Ack } from '../../protocol/index.js'

export interface TestSystem {
  server: RunningServer
  gateway: RunningGateway
  adminToken: string
  dataDir: string
  mqttUrl: string
  api<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number, body: T }>
  provision(id: string, extra?: Record<string, unknown>): Promise<string>
  /** Stops the gateway and starts it again on the same data directory (new ports). */
  restartGateway(): Promise<RunningGateway>
  /** Stops the gateway, to be started again later with `startGateway`. */
  stopGateway(): Promise<void>
  startGateway(): Promise<RunningGateway>
  stop(): Promise<void>
}

export const quietLog = pino({ level: process.env.TEST_LOG_LEVEL || 'silent' })

export interface SystemOptions {
  databaseUrl?: string
  server?: Partial<ServerConfig>
  gateway?: Partial<GatewayConfig>
  /** Puts something between gateway and server (a recording proxy): gets the server URL, returns the gateway's. */
  gatewayServerUrl?: (serverUrl: string) => string | Promise<string>
  /** Where the gateway logs (silent unless TEST_LOG_LEVEL says otherwise). */
  gatewayLog?: Logger
}

export async function startSystem (options: SystemOptions = {}): Promise<TestSystem> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sos-test-'))
  const adminToken = `admin_${randomBytes(12).toString('hex')}`
  const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
  const server = await startServer({
    httpPort: 0, httpHost: '127.0.0.1', dataDir, databaseUrl: options.databaseUrl, adminToken, gatewayToken, logLevel: 'silent', ...options.server
  })
  const gatewayConfig: GatewayConfig = {
    gatewayId: 'gw-test',
    mqttHost: '127.0.0.1',
    mqttPort: 0,
    mqttWsPort: 0,
    httpPort: 0,
    dataDir: join(dataDir, 'gateway'),
    serverUrl: options.gatewayServerUrl ? await options.gatewayServerUrl(server.url) : server.url,
    gatewayToken,
    credentialRefreshMs: 30_000,
    forwardBatchSize: 500,
    logLevel: 'silent',
    ...options.gateway
  }
  const gatewayLog = options.gatewayLog ?? quietLog
  let gateway = await startGateway(gatewayConfig, gatewayLog)

  const api: TestSystem['api'] = async (method, path, body, token = adminToken) => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }

  return {
    server,
    get gateway () { return gateway },
    adminToken,
    dataDir,
    get mqttUrl () { return `mqtt://127.0.0.1:${gateway.ports.mqtt}` },
    api,
    async restartGateway () {
      await gateway.stop()
      gateway = await startGateway(gatewayConfig, gatewayLog)
      return gateway
    },
    async stopGateway () {
      await gateway.stop()
    },
    async startGateway () {
      gateway = await startGateway(gatewayConfig, gatewayLog)
      return gateway
    },
    async provision (id, extra = {}) {
      const { status, body } = await api('POST', '/v1/devices', { id, kind: 'button', name: `Button ${id}`, zone: 'apd-1', lat: 10.86, lon: 106.7, ...extra })
      if (status !== 201) throw new Error(`provisioning ${id} failed: ${status} ${JSON.stringify(body)}`)
      return body.secret as string
    },
    async stop () {
      await gateway.stop()
      await server.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/** Connects as a device (or `{id}:{suffix}`) and resolves once connected; rejects if refused. */
export function connectDevice (url: string, clientId: string, username: string | undefined, password: string | undefined, extra: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { clientId, username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clean: true, ...extra })
    client.once('connect', () => resolve(client))
    client.once('error', (err) => { client.end(true); reject(err) })
  })
}

/** Collects the acks a device receives; `next(state)` waits for the next ack in that state. */
export async function ackCollector (client: MqttClient, deviceId: string) {
  const acks: Ack[] = []
  const waiters: Array<{ match: (a: Ack) => boolean, resolve: (a: Ack) => void }> = []
  client.on('message', (topic, payload) => {
    if (topic !== topics.ack(deviceId)) return
    const ack = JSON.parse(payload.toString()) as Ack
    acks.push(ack)
    for (const w of [...waiters]) if (w.match(ack)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(ack) }
  })
  await client.subscribeAsync(topics.ack(deviceId), { qos: 1 })
  return {
    acks,
    waitFor (match: (a: Ack) => boolean, timeoutMs = 5000): Promise<Ack> {
      const found = acks.find(match)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching ack within ${timeoutMs} ms; got ${JSON.stringify(acks)}`)), timeoutMs)
        waiters.push({ match, resolve: (a) => { clearTimeout(timer); resolve(a) } })
      })
    }
  }
}

/** Polls `probe` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T> (probe: () => Promise<T | undefined>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
