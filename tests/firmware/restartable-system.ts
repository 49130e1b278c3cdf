/**
 * The real server with a gateway that can be stopped and started again on the same port and
 * data dir: "the gateway is down" for devices, without losing its outbox. Built on the same
 * parts as tests/helpers/system.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { startServer, type RunningServer } from '../../server/server.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import { quietLog } from '../helpers/system.js'

export interface RestartableSystem {
  server: RunningServer
  gateway: RunningGateway | undefined
  mqttPort: number
  mqttUrl: string
  dataDir: string
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number, body: T }>
  provision(id: string, extra?: Record<string, unknown>): Promise<string>
  stopGateway(): Promise<void>
  startGateway(): Promise<void>
  stop(): Promise<void>
}

export async function startRestartableSystem (): Promise<RestartableSystem> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sos-fw-'))
  const adminToken = `admin_${randomBytes(12).toString('hex')}`
  const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
  const server = await startServer({ httpPort: 0, httpHost: '127.0.0.1', dataDir, adminToken, gatewayToken, logLevel: 'silent' })
  const gatewayConfig = (mqttPort: number) => ({
    gatewayId: 'gw-fw-test',
    mqttHost: '127.0.0.1',
    mqttPort,
    mqttWsPort: 0,
    dataDir: join(dataDir, 'gateway'),
    serverUrl: server.url,
    gatewayToken,
    credentialRefreshMs: 30_000,
    forwardBatchSize: 500,
    logLevel: 'silent'
  })
  const first = await startGateway(gatewayConfig(0), quietLog)

  const api: RestartableSystem['api'] = async (method, path, body) => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }

  const system: RestartableSystem = {
    server,
    gateway: first,
    mqttPort: first.ports.mqtt,
    mqttUrl: `mqtt://127.0.0.1:${first.ports.mqtt}`,
    dataDir,
    api,
    async provision (id, extra = {}) {
      const { status, body } = await api('POST', '/v1/devices', { id, kind: 'button', name: `Device ${id}`, zone: 'apd-1', lat: 10.86, lon: 106.7, ...extra })
      if (status !== 201) throw new Error(`provisioning ${id} failed: ${status} ${JSON.stringify(body)}`)
      return body.secret as string
    },
    async stopGateway () {
      const gateway = system.gateway
      system.gateway = undefined
      await gateway?.stop()
    },
    async startGateway () {
      system.gateway ??= await startGateway(gatewayConfig(system.mqttPort), quietLog)
    },
    async stop () {
      await system.stopGateway()
      await server.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
  return system
}
