/**
 * A gateway whose token the server refuses (revoked, wrong, or of another role) says so at once:
 * `/readyz` 503 with the reason, `/healthz` naming the refusal, a gauge, one error line (not a
 * warning per retry). Meanwhile it keeps PUBACKing and durably keeping device events, and once
 * the server takes its token again it sends them (each stored once) and is ready again. A real
 * server, a real gateway, a real MQTT device.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import type { MqttClient } from 'mqtt'
import { startServer, type RunningServer } from '../../server/server.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import type { GatewayConfig } from '../../gateway/config.js'
import { reportServerAuth, ServerAuth, withoutSecrets } from '../../gateway/server-auth.js'
import { createGatewayMetrics } from '../../gateway/metrics.js'
import { connectDevice, eventually, quietLog } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 90_000 })

const REFUSED_LINE = /refuses this gateway's credentials/
const ACCEPTED_LINE = /accepts this gateway's credentials again/

describe('a gateway whose token the server refuses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-refusal-'))
  const adminToken = `admin_${randomBytes(12).toString('hex')}`
  const deviceId = 'btn-refused-001'
  const lines: Array<{ level: number, msg: string, err?: string }> = []
  let server: RunningServer
  let gateway: RunningGateway
  let device: MqttClient
  let gatewayToken: { id: string, token: string }

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }
  const startTheServer = (port: number, staticGatewayToken?: string) => startServer({
    httpPort: port, httpHost: '127.0.0.1', dataDir: join(dir, 'server'), adminToken, gatewayToken: staticGatewayToken, logLevel: 'silent'
  })
  const gatewayConfig = (token: string, dataDir: string): GatewayConfig => ({
    gatewayId: 'gw-refused', mqttHost: '127.0.0.1', mqttPort: 0, mqttWsPort: 0, httpPort: 0, dataDir,
    serverUrl: server.url, gatewayToken: token, credentialRefreshMs: 30_000, forwardBatchSize: 100,
    // A short long poll: a revocation shows on the downlink within a second or so.
    downlinkWaitMs: 1000, logLevel: 'info'
  })
  const probe = async (of: RunningGateway, path: '/readyz' | '/healthz') => {
    const response = await fetch(`http://127.0.0.1:${of.ports.http}${path}`)
    return { status: response.status, body: await response.json() as Record<string, any> }
  }
  const press = (seq: number) => device.publishAsync(topics.event(deviceId), JSON.stringify({ seq, type: 'press' }), { qos: 1 })
  const storedSeqs = async (): Promise<number[]> => ((await api('GET', `/v1/events?deviceId=${deviceId}&limit=100`)).body as Array<{ seq: number }>).map((e) => e.seq).sort((a, b) => a - b)
  const linesMatching = (pattern: RegExp) => lines.filter((l) => pattern.test(l.msg))

  beforeAll(async () => {
    server = await startTheServer(0)
    const provisioned = await api('POST', '/v1/devices', { id: deviceId, kind: 'button', name: deviceId, zone: 'apd-1', lat: 10.86, lon: 106.7 })
    gatewayToken = (await api('POST', '/v1/tokens', { role: 'gateway', name: 'gw-refused' })).body
    const sink = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
    gateway = await startGateway(gatewayConfig(gatewayToken.token, join(dir, 'gw')), pino({ level: 'info' }, sink))
    device = await connectDevice(`mqtt://127.0.0.1:${gateway.ports.mqtt}`, deviceId, deviceId, provisioned.body.secret as string)
  })

  afterAll(async () => {
    device?.end(true)
    await gateway?.stop()
    await server?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('says at once, on /readyz, /healthz and its metrics, that the server refuses its revoked token (the downlink poll alone)', async () => {
    await press(1)
    await eventually(async () => (await storedSeqs()).includes(1) || undefined, 15_000, 'press 1 stored while the token is good')
    expect((await probe(gateway, '/readyz')).status).toBe(200)
    expect((await probe(gateway, '/healthz')).body.serverAuthRefused).toBeNull()

    expect((await api('DELETE', `/v1/tokens/${gatewayToken.id}`)).status).toBe(204)
    // No event is sent: the downlink's next poll meets the revocation.
    const ready = await eventually(async () => { const r = await probe(gateway, '/readyz'); return r.status === 503 ? r : undefined }, 15_000, '/readyz 503')
    expect(ready.body.reason).toMatch(/refuses this gateway's credentials \(401/)
    const health = await probe(gateway, '/healthz')
    expect(health.status).toBe(200) // alive: restarting it would not fix its token
    expect(health.body.serverAuthRefused).toMatchObject({ status: 401, request: 'GET /v1/gateway/downlink', server: `${server.url}/` })
    expect(Date.parse(health.body.serverAuthRefused.since)).toBeGreaterThan(Date.now() - 60_000)
    expect(await metricValue(gateway, 'sos_gateway_server_auth_refused')).toBe(1)
    expect(await metricValue(gateway, 'sos_gateway_server_auth_refusals_total', { status: '401' })).toBeGreaterThan(0)
  })

  it('keeps PUBACKing presses and keeping them meanwhile, with one error line instead of a warning per retry', async () => {
    const before = await metricValue(gateway, 'sos_gateway_server_auth_refusals_total')
    // publishAsync resolves on the PUBACK: the presses are in the outbox.
    await press(2)
    await press(3)
    expect(gateway.outbox.depth()).toBe(2)
    // The forwarder is refused too, and retries (counted), without a warning each time.
    await expect.poll(() => metricValue(gateway, 'sos_gateway_server_auth_refusals_total'), { timeout: 10_000 }).toBeGreaterThan(before + 3)
    expect(await storedSeqs()).toEqual([1])
    expect(gateway.outbox.depth()).toBe(2)
    expect(linesMatching(REFUSED_LINE)).toHaveLength(1)
    expect(linesMatching(REFUSED_LINE)[0]!.level).toBe(50) // error
    // (The credential cache's own refresh, every 30 s, says its sync failed: not a retry line.)
    expect(lines.filter((l) => l.level >= 40 && /failed; retrying/.test(l.msg))).toEqual([])
    expect((await probe(gateway, '/readyz')).status).toBe(503)
  })

  it('sends what it kept once the server takes its token again, each press stored once, and is ready again', async () => {
    // Fixed on the server's side: restarted with the gateway's token as its GATEWAY_TOKEN.
    const port = server.port
    await server.close()
    server = await startTheServer(port, gatewayToken.token)
    await eventually(async () => (await probe(gateway, '/readyz')).status === 200 || undefined, 20_000, '/readyz 200 again')
    await eventually(async () => (await storedSeqs()).length === 3 || undefined, 20_000, 'presses 2 and 3 stored')
    expect(await storedSeqs()).toEqual([1, 2, 3])
    await expect.poll(() => gateway.outbox.depth(), { timeout: 5_000 }).toBe(0)
    expect((await probe(gateway, '/healthz')).body.serverAuthRefused).toBeNull()
    expect(await metricValue(gateway, 'sos_gateway_server_auth_refused')).toBe(0)
    expect(linesMatching(ACCEPTED_LINE)).toHaveLength(1)
    expect(linesMatching(REFUSED_LINE)).toHaveLength(1)
  })

  it('counts a token of another role (403) as refused too, from the first call at start-up', async () => {
    const operator = (await api('POST', '/v1/tokens', { role: 'operator', name: 'not-a-gateway' })).body.token as string
    const misconfigured = await startGateway(gatewayConfig(operator, join(dir, 'gw-operator')), quietLog)
    try {
      const ready = await probe(misconfigured, '/readyz')
      expect(ready.status).toBe(503)
      expect(ready.body.serverAuthRefused).toMatchObject({ status: 403 })
      expect(await metricValue(misconfigured, 'sos_gateway_server_auth_refused')).toBe(1)
    } finally {
      await misconfigured.stop()
    }
  })
})

describe('ServerAuth', () => {
  it('lets no answer to a request sent before the refusal end it (a long poll answered late)', () => {
    const auth = new ServerAuth('http://server:8080/')
    const ended: unknown[] = []
    auth.on('accepted', (e) => ended.push(e))
    const longPoll = auth.sending()
    const ingest = auth.sending()
    auth.answered(ingest, 401, 'POST /v1/ingest')
    auth.answered(longPoll, 200, 'GET /v1/gateway/downlink')
    expect(auth.refusal()).toMatchObject({ status: 401, request: 'POST /v1/ingest', refusals: 1 })
    expect(ended).toEqual([])
    // Answers that say nothing of the token (a server down, a bad batch) leave it as it is.
    auth.answered(auth.sending(), 503, 'POST /v1/ingest')
    auth.answered(auth.sending(), 400, 'POST /v1/ingest')
    expect(auth.refusal()).not.toBeNull()
    auth.answered(auth.sending(), 200, 'POST /v1/ingest')
    expect(auth.refusal()).toBeNull()
    expect(ended).toHaveLength(1)
  })

  it('logs a few spells a minute when server instances disagree on the token, and the gauge follows the latest answer', async () => {
    const auth = new ServerAuth('http://server:8080/')
    const metrics = createGatewayMetrics()
    const logged: Array<{ level: number, msg: string }> = []
    reportServerAuth(auth, metrics, pino({ level: 'info' }, new Writable({ write (chunk, _encoding, done) { logged.push(JSON.parse(String(chunk))); done() } })))
    for (let i = 0; i < 20; i++) {
      auth.answered(auth.sending(), 401, 'POST /v1/ingest')
      auth.answered(auth.sending(), 200, 'POST /v1/ingest')
    }
    auth.answered(auth.sending(), 403, 'GET /v1/gateway/downlink')
    await new Promise((resolve) => setImmediate(resolve))
    expect(logged.filter((l) => REFUSED_LINE.test(l.msg))).toHaveLength(3)
    expect(logged.filter((l) => ACCEPTED_LINE.test(l.msg))).toHaveLength(3)
    expect((await metrics.registry.getSingleMetric('sos_gateway_server_auth_refused')!.get()).values[0]!.value).toBe(1)
    const refusals = (await metrics.registry.getSingleMetric('sos_gateway_server_auth_refusals_total')!.get()).values
    expect(Object.fromEntries(refusals.map((v) => [v.labels.status, v.value]))).toEqual({ 401: 20, 403: 1 })
  })

  it('shows the server without the credentials its URL may hold', () => {
    expect(withoutSecrets('https://user:secret@server.example:8443/base?token=x#y')).toBe('https://server.example:8443/base')
  })
})
