/**
 * Two gateway processes under one GATEWAY_ID (a cloned configuration) hide each other's loss
 * from the gateway watch: the server tells them apart by the instance id each sends, and reports
 * the id as shared (API, metric, log) once they call by turns, while a restart, which replaces
 * one process by the next, is not. First through the API with chosen instance ids, then with two
 * real gateways started with the same id against one server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, TOKENS, type Fixture } from './fixture.js'
import { GATEWAY_ID_HEADER, GATEWAY_INSTANCE_HEADER } from '../../protocol/index.js'
import { startSystem, quietLog, type TestSystem } from '../helpers/system.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import { join } from 'node:path'

vi.setConfig({ hookTimeout: 240_000 })

describe.each(databaseBackends.filter((b) => !b.timescale))('gateway ids shared by two processes on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const logged: string[] = []

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    const sink = { write: (line: string) => { logged.push(JSON.parse(line).msg) } }
    fx = await buildFixture(opened.db, { logger: pino({ level: 'error' }, sink) })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const call = async (gatewayId: string, instance: string) => {
    const response = await fx.app.inject({
      method: 'GET', url: '/v1/gateway/downlink?wait=0',
      headers: { authorization: `Bearer ${TOKENS.gateway}`, [GATEWAY_ID_HEADER]: gatewayId, [GATEWAY_INSTANCE_HEADER]: instance }
    })
    expect(response.statusCode).toBe(200)
  }
  const status = async (gatewayId: string) => (await fx.call('GET', '/v1/gateways')).body.find((g: { id: string }) => g.id === gatewayId)
  const sharedGauge = async () => Number(/^sos_gateways_sharing_an_id (\d+)$/m.exec((await fx.app.inject({ url: '/metrics' })).body)?.[1])

  it('does not take restarts for a shared id', async () => {
    for (const instance of ['boot-1', 'boot-2', 'boot-3']) {
      for (let i = 0; i < 3; i++) await call('gw-restarts', instance)
    }
    expect(await status('gw-restarts')).toMatchObject({ sharedId: false })
    expect(await sharedGauge()).toBe(0)
  })

  it('reports an id two processes call under by turns, and says so once in the log', async () => {
    await call('gw-cloned', 'sd-card-a')
    await call('gw-cloned', 'sd-card-b')
    expect(await status('gw-cloned')).toMatchObject({ sharedId: false })
    await call('gw-cloned', 'sd-card-a')
    expect(await status('gw-cloned')).toMatchObject({ sharedId: true })
    for (let i = 0; i < 5; i++) { await call('gw-cloned', 'sd-card-b'); await call('gw-cloned', 'sd-card-a') }
    expect(await sharedGauge()).toBe(1)
    expect(logged.filter((m) => /two gateway processes call under one GATEWAY_ID/.test(m))).toHaveLength(1)
  })

  it('sees a process that calls rarely beside one that calls all the time', async () => {
    // The busy one's calls are written only every few seconds; the quiet one's single call
    // between them must still count.
    for (let i = 0; i < 10; i++) await call('gw-busy-quiet', 'busy')
    await call('gw-busy-quiet', 'quiet')
    await call('gw-busy-quiet', 'busy')
    expect(await status('gw-busy-quiet')).toMatchObject({ sharedId: true })
  })
})

describe('two real gateways started with one GATEWAY_ID', () => {
  let system: TestSystem
  let twin: RunningGateway | undefined

  beforeAll(async () => {
    system = await startSystem({ gateway: { downlinkWaitMs: 200 } })
  })

  afterAll(async () => {
    await twin?.stop()
    await system?.stop()
  })

  it('are reported as sharing their id', async () => {
    const { body: token } = await system.api('POST', '/v1/tokens', { role: 'gateway', name: 'twin' })
    twin = await startGateway({
      gatewayId: 'gw-test', mqttHost: '127.0.0.1', mqttPort: 0, mqttWsPort: 0, dataDir: join(system.dataDir, 'twin'),
      serverUrl: system.server.url, gatewayToken: token.token, credentialRefreshMs: 30_000, forwardBatchSize: 500, downlinkWaitMs: 200, logLevel: 'silent'
    }, quietLog)
    await expect.poll(async () => (await system.api('GET', '/v1/gateways')).body.find((g: { id: string }) => g.id === 'gw-test')?.sharedId, { timeout: 15_000 }).toBe(true)
  })
})
