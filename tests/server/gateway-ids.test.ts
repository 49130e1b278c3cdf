/**
 * Two gateway processes under one GATEWAY_ID (a cloned configuration) would hide each other's
 * loss from the gateway watch: the server tells them apart by the instance id each sends, reports
 * the id as shared (API, metric, log) once they call over the same stretch of time, which a
 * restart never does, and counts the id lost as soon as either stops calling, so the devices
 * behind the dead one are reported. First through the API with chosen instance ids, then with
 * two real gateways started with the same id against one server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'
import { GATEWAY_ID_HEADER, GATEWAY_INSTANCE_HEADER } from '../../protocol/index.js'
import { startSystem, quietLog, type TestSystem } from '../helpers/system.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import { join } from 'node:path'

vi.setConfig({ hookTimeout: 240_000 })

const LOST_AFTER = 3000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(databaseBackends.filter((b) => !b.timescale))('gateway ids shared by two processes on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const logged: string[] = []

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    const sink = { write: (line: string) => { logged.push(JSON.parse(line).msg) } }
    // Lost after 3 s: twins are two processes calling over more than 1 s together.
    fx = await buildFixture(opened.db, { logger: pino({ level: 'error' }, sink), settings: { gatewayLostAfterMs: LOST_AFTER }, gatewayWatch: { stallAfterMs: 60_000 } })
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
  /** Each instance calls every `everyMs` for `ms` (as a live gateway's long polls do), side by side. */
  const calling = async (gatewayId: string, ms: number, instances: Array<{ id: string, everyMs: number }>, alongside?: () => Promise<void>) => {
    const until = Date.now() + ms
    await Promise.all(instances.map(async ({ id, everyMs }) => {
      while (Date.now() < until) { await call(gatewayId, id); await sleep(everyMs) }
    }).concat(alongside ? [(async () => { while (Date.now() < until) { await alongside(); await sleep(200) } })()] : []))
  }
  const status = async (gatewayId: string) => (await fx.call('GET', '/v1/gateways')).body.find((g: { id: string }) => g.id === gatewayId)
  const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec((await fx.app.inject({ url: '/metrics' })).body)?.[1])

  it('does not take restarts for a shared id, even with a call of the old process arriving late', async () => {
    await calling('gw-restarts', 1500, [{ id: 'boot-1', everyMs: 50 }])
    await call('gw-restarts', 'boot-2')
    await call('gw-restarts', 'boot-1')
    await calling('gw-restarts', 1500, [{ id: 'boot-2', everyMs: 50 }])
    await calling('gw-restarts', 1500, [{ id: 'boot-3', everyMs: 50 }])
    expect(await status('gw-restarts')).toMatchObject({ sharedId: false, lost: false })
    expect(await gauge('sos_gateways_sharing_an_id')).toBe(0)
  })

  it('reports an id two processes call under together, and says so once in the log', async () => {
    await calling('gw-cloned', 1500, [{ id: 'sd-card-a', everyMs: 50 }, { id: 'sd-card-b', everyMs: 70 }])
    expect(await status('gw-cloned')).toMatchObject({ sharedId: true, lost: false })
    expect(await gauge('sos_gateways_sharing_an_id')).toBe(1)
    await calling('gw-cloned', 500, [{ id: 'sd-card-a', everyMs: 50 }, { id: 'sd-card-b', everyMs: 70 }])
    expect(logged.filter((m) => /two gateway processes call under one GATEWAY_ID/.test(m))).toHaveLength(1)
  })

  it('sees a process that calls rarely beside one that calls all the time', async () => {
    // The busy one's calls are written only every 300 ms; the quiet one's two calls between them
    // must still count.
    await calling('gw-busy-quiet', 2000, [{ id: 'busy', everyMs: 20 }, { id: 'quiet', everyMs: 1200 }])
    expect(await status('gw-busy-quiet')).toMatchObject({ sharedId: true })
  })

  it('reports the silent devices behind the twin that stopped calling, and not those behind the other', async () => {
    await fx.provision('btn-twin-a')
    await fx.provision('btn-twin-b')
    let seq = 0
    const heartbeats = (ids: string[]) => async () => {
      seq++
      await fx.ingest({ events: ids.map((id) => gatewayEvent(id, { seq, type: 'heartbeat' }, Date.now(), 'gw-twins')) })
    }
    await calling('gw-twins', 1500, [{ id: 'twin-a', everyMs: 100 }, { id: 'twin-b', everyMs: 100 }], heartbeats(['btn-twin-a', 'btn-twin-b']))
    // Twin b loses power, with the device behind it; twin a and its device go on.
    await calling('gw-twins', LOST_AFTER + 500, [{ id: 'twin-a', everyMs: 100 }], heartbeats(['btn-twin-a']))
    await fx.app.services.gatewayWatch.check()
    expect(await status('gw-twins')).toMatchObject({ sharedId: true, silent: false, lost: true })
    const open = async (id: string) => (await fx.call('GET', `/v1/alerts?deviceId=${id}&kind=device_offline`)).body
    expect(await open('btn-twin-b')).toHaveLength(1)
    expect((await open('btn-twin-b'))[0]).toMatchObject({ state: 'open' })
    expect(await open('btn-twin-a')).toHaveLength(0)

    // Twin b gone for three intervals (renamed, or restarted under a new instance id): the id is
    // lost no more, while it stays marked shared; b's device keeps its alert until heard.
    await calling('gw-twins', 2 * LOST_AFTER, [{ id: 'twin-a', everyMs: 100 }], heartbeats(['btn-twin-a']))
    expect(await status('gw-twins')).toMatchObject({ sharedId: true, lost: false })
    expect((await open('btn-twin-b'))[0]).toMatchObject({ state: 'open' })
  })
})

describe('two real gateways started with one GATEWAY_ID', () => {
  let system: TestSystem
  let twin: RunningGateway | undefined

  beforeAll(async () => {
    system = await startSystem({ server: { gatewayLostAfterMs: LOST_AFTER }, gateway: { downlinkWaitMs: 200 } })
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
