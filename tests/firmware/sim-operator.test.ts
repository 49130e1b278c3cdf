/**
 * The simulator playing the ward operator (`npm run sim -- --operator`) touches its own fleet's
 * alerts only. Pointed at a live server it acknowledged and resolved every open panic, a real
 * device's too, as "real", patrol sent, while nobody had looked at it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { SimOperator } from '../../firmware-sim/sim/operator.js'
import { topics } from '../../protocol/index.js'

vi.setConfig({ hookTimeout: 120_000, testTimeout: 60_000 })

describe('the simulated operator', () => {
  let system: TestSystem
  beforeAll(async () => { system = await startSystem() })
  afterAll(async () => { await system?.stop() })

  it('acknowledges and resolves the simulated fleet\'s panics, and leaves every other device\'s alone', async () => {
    const alertOf = async (id: string) => {
      const secret = await system.provision(id)
      const device = await connectDevice(system.mqttUrl, id, id, secret)
      await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
      const [alert] = await eventually(async () => {
        const { body } = await system.api('GET', `/v1/alerts?deviceId=${id}&kind=panic`)
        return body.length > 0 ? body : undefined
      }, 10_000, `${id}'s alert`)
      await device.endAsync()
      return alert.id as string
    }
    const real = await alertOf('btn-on-a-real-street')
    const simulated = await alertOf('sim-btn-0001')

    const operator = new SimOperator(system.server.url, system.adminToken, new Set(['sim-btn-0001']), 200)
    operator.start()
    try {
      await eventually(async () => (await system.api('GET', `/v1/alerts/${simulated}`)).body.state === 'resolved' || undefined, 15_000, 'the simulated alert resolved')
    } finally {
      operator.stop()
    }
    expect((await system.api('GET', `/v1/alerts/${real}`)).body.state).toBe('open')
  })
})
