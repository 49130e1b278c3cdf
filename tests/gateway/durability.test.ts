/**
 * Nothing acknowledged is lost: the gateway process killed with SIGKILL right after the
 * PUBACKs of a burst of presses, while the server is down; after both restart, every
 * acknowledged press is stored exactly once. And with the server away for a while, the
 * gateway keeps accepting and then delivers everything in per-device order.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { startServer, type RunningServer } from '../../server/server.js'
import { startGateway } from '../../gateway/gateway.js'
import { connectDevice, eventually, quietLog } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { spawnGateway } from './gateway-process.js'
import { startRecordingProxy } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

const adminToken = `admin_${randomBytes(12).toString('hex')}`
const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
const dirs: string[] = []

function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'sos-dur-'))
  dirs.push(dir)
  return dir
}

function serverOn (dataDir: string, httpPort = 0): Promise<RunningServer> {
  return startServer({ httpPort, httpHost: '127.0.0.1', dataDir, adminToken, gatewayToken, logLevel: 'silent' })
}

async function api (server: RunningServer | string, method: string, path: string, body?: unknown): Promise<any> {
  const base = typeof server === 'string' ? server : server.url
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  return response.json()
}

async function provision (server: RunningServer, id: string): Promise<string> {
  const device = await api(server, 'POST', '/v1/devices', { id, kind: 'button', name: id, zone: 'apd-1', lat: 10.86, lon: 106.7 })
  return device.secret
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

// Each test starts the embedded database twice (PGlite takes seconds on a busy machine).
describe('durability', { timeout: 240_000 }, () => {
  it('stores every PUBACKed press exactly once after SIGKILL of the gateway while the server was down', async () => {
    const serverDir = tempDir()
    let server = await serverOn(serverDir)
    const port = server.port
    const id = 'btn-crash-001'
    const secret = await provision(server, id)
    const gatewayEnv = { GATEWAY_TOKEN: gatewayToken, SERVER_URL: server.url, DATA_DIR: join(tempDir(), 'gw'), GATEWAY_ID: 'gw-crash' }
    // The gateway learns the device's credentials from the server at start, then the server goes away.
    let gateway = await spawnGateway(gatewayEnv)
    await server.close()

    const device = await connectDevice(`mqtt://127.0.0.1:${gateway.mqttPort}`, id, id, secret)
    const burst = Array.from({ length: 40 }, (_, i) => i + 1)
    // Every publishAsync resolves on its PUBACK, which the gateway sends only after the fsync.
    await Promise.all(burst.map((seq) => device.publishAsync(topics.event(id), JSON.stringify({ seq, type: 'press', boot: 'b1' }), { qos: 1 })))
    gateway.child.kill('SIGKILL')
    expect(await gateway.exited).toBeNull()
    device.end(true)

    server = await serverOn(serverDir, port)
    gateway = await spawnGateway(gatewayEnv)
    try {
      const events = await eventually(async () => {
        const list = await api(server, 'GET', `/v1/events?deviceId=${id}&limit=1000`) as any[]
        return list.length >= burst.length ? list : undefined
      }, 30_000, 'all presses stored')
      // Give a duplicate delivery, if any, a chance to show: the gateway's outbox must be empty.
      await eventually(async () => {
        const health = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/healthz`)).json() as { outboxDepth: number }
        return health.outboxDepth === 0 ? true : undefined
      }, 30_000, 'outbox drained')
      const again = await api(server, 'GET', `/v1/events?deviceId=${id}&limit=1000`) as any[]
      expect(again.map((e) => e.seq).sort((x, y) => x - y)).toEqual(burst)
      expect(events.length).toBe(burst.length)
    } finally {
      gateway.child.kill('SIGTERM')
      await gateway.exited
      await server.close()
    }
  })

  it('keeps accepting while the server is away and delivers in per-device order when it returns', async () => {
    const serverDir = tempDir()
    let server = await serverOn(serverDir)
    const port = server.port
    const ids = ['btn-order-a', 'btn-order-b']
    const secrets = await Promise.all(ids.map((id) => provision(server, id)))
    const proxy = await startRecordingProxy(`http://127.0.0.1:${port}`)
    const gateway = await startGateway({
      gatewayId: 'gw-order', mqttHost: '127.0.0.1', mqttPort: 0, mqttWsPort: 0, dataDir: join(tempDir(), 'gw'),
      serverUrl: proxy.url, gatewayToken, credentialRefreshMs: 30_000, forwardBatchSize: 7, logLevel: 'silent'
    }, quietLog)
    const devices = await Promise.all(ids.map((id, i) => connectDevice(`mqtt://127.0.0.1:${gateway.ports.mqtt}`, id, id, secrets[i]!)))
    let serverUp = true
    try {
      await server.close()
      serverUp = false
      const count = 25
      for (let seq = 1; seq <= count; seq++) {
        // Interleaved, each device in its own order; presses and long presses (never rate-limited).
        await Promise.all(devices.map((d, i) => d.publishAsync(topics.event(ids[i]!), JSON.stringify({ seq, type: seq % 2 === 0 ? 'hold' : 'press' }), { qos: 1 })))
      }
      expect(gateway.outbox.depth()).toBe(2 * count)

      server = await serverOn(serverDir, port)
      serverUp = true
      await eventually(async () => gateway.outbox.depth() === 0 ? true : undefined, 60_000, 'outbox drained after the server returned')
      for (const id of ids) {
        const sent = proxy.batches.flatMap((b) => b.events).filter((e) => e.deviceId === id).map((e) => e.event.seq)
        // Retries may resend a batch; the order of first appearance is what the server stored.
        const firstSeen = sent.filter((seq, i) => sent.indexOf(seq) === i)
        expect(firstSeen).toEqual(Array.from({ length: count }, (_, i) => i + 1))
        const stored = await api(server, 'GET', `/v1/events?deviceId=${id}&limit=1000`) as any[]
        expect(stored.map((e) => e.seq).sort((x, y) => x - y)).toEqual(firstSeen)
      }
    } finally {
      for (const d of devices) d.end(true)
      await gateway.stop()
      await proxy.close()
      if (serverUp) await server.close()
    }
  })
})
