/**
 * The gateway's own `rejected` answers to a silent device carry `silent: true`, as the server's
 * acks do (protocol/ack.ts; review 62): a shop counter whose malformed payload, foreign topic or
 * rate-limited cancel was refused by the gateway heard a bare `rejected`, and a third-party
 * counter that beeps on an error unless told it is silent would sound during a hold-up.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ackCollector, connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'

vi.setConfig({ hookTimeout: 240_000 })

describe('refusals by the gateway to a silent device', () => {
  let system: TestSystem
  const counter = 'ctr-silent-001'
  const button = 'btn-loud-001'
  const secrets: Record<string, string> = {}

  beforeAll(async () => {
    system = await startSystem()
    secrets[counter] = await system.provision(counter, { kind: 'counter', silent: true, pin: '4821' })
    secrets[button] = await system.provision(button)
  })

  afterAll(async () => {
    await system?.stop()
  })

  it('a malformed payload and a foreign topic are answered rejected and silent; a loud button\'s are not marked', async () => {
    for (const id of [counter, button]) {
      const device = await connectDevice(system.mqttUrl, id, id, secrets[id]!)
      const acks = await ackCollector(device, id)
      await device.publishAsync(topics.event(id), 'not json', { qos: 1 })
      await device.publishAsync(topics.event('btn-someone-else'), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
      await expect.poll(() => acks.acks.filter((a) => a.state === 'rejected').length, { timeout: 10_000 }).toBe(2)
      for (const ack of acks.acks.filter((a) => a.state === 'rejected')) {
        if (id === counter) expect(ack, JSON.stringify(ack)).toMatchObject({ silent: true })
        else expect(ack.silent, JSON.stringify(ack)).toBeUndefined()
      }
      await device.endAsync()
    }
  })
})
