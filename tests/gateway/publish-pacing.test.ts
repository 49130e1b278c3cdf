/**
 * A connection flooding publishes is paced, not refused: past its bucket the gateway stops
 * reading it until a token is due (aedes' pause and resume), every packet it sent is still
 * handled (PUBACKed, answered), its own alarm behind the flood is stored, and other devices'
 * presses are PUBACKed and stored meanwhile. Real broker, real sockets, real MQTT.js clients.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ackCollector, connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 90_000 })

// Small, so a flood of a few dozen packets outlasts the bucket by seconds.
const pacing = { burst: 10, perSecond: 10 }

describe('publish pacing per connection', () => {
  let system: TestSystem
  const secrets = new Map<string, string>()
  const flooder = 'btn-pace-flood'
  const other = 'btn-pace-other'

  beforeAll(async () => {
    system = await startSystem({ gateway: { publishPacing: pacing } })
    for (const id of [flooder, other]) secrets.set(id, await system.provision(id))
  })

  afterAll(async () => {
    await system?.stop()
  })

  const paused = () => metricValue(system.gateway, 'sos_gateway_connections_paused_total')

  it('stops reading a flooding connection until a token is due, drops nothing, and stores other devices\' presses meanwhile', async () => {
    const spray = 50
    const flood = await connectDevice(system.mqttUrl, flooder, flooder, secrets.get(flooder)!)
    const floodAcks = await ackCollector(flood, flooder)
    const bystander = await connectDevice(system.mqttUrl, other, other, secrets.get(other)!)
    const bystanderAcks = await ackCollector(bystander, other)

    const started = Date.now()
    // Junk at full speed, then the device's own press behind it: all written to the socket at once.
    const sent = Array.from({ length: spray }, (_, i) => flood.publishAsync(topics.event(flooder), `junk ${i}`, { qos: 1 }))
    sent.push(flood.publishAsync(topics.event(flooder), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 }))
    await expect.poll(paused, { timeout: 10_000 }).toBeGreaterThanOrEqual(1)

    // Another device's press is read, made durable and stored while the flood waits its turn.
    await bystander.publishAsync(topics.event(other), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    expect((await bystanderAcks.waitFor((a) => a.state === 'received' && a.seq === 1, 15_000)).alertId).toBeTruthy()
    const answeredMeanwhile = floodAcks.acks.filter((a) => a.state === 'rejected').length
    expect(answeredMeanwhile, 'the flood was still waiting to be read').toBeLessThan(spray)

    // Nothing dropped: every packet PUBACKed and answered, the press behind the junk stored.
    await Promise.all(sent)
    await expect.poll(() => floodAcks.acks.filter((a) => a.state === 'rejected').length, { timeout: 30_000 }).toBe(spray)
    expect((await floodAcks.waitFor((a) => a.state === 'received' && a.seq === 1, 15_000)).alertId).toBeTruthy()
    // Read no faster than its pace: the packets past the burst waited for their tokens.
    const paced = (spray + 1 - pacing.burst) / pacing.perSecond * 1000
    expect(Date.now() - started).toBeGreaterThanOrEqual(paced * 0.9)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total')).toBe(spray)
    await flood.endAsync()
    await bystander.endAsync()
  })

  it('lets a paused connection go when the device takes its client id over, and reads the new connection', async () => {
    const first = await connectDevice(system.mqttUrl, flooder, flooder, secrets.get(flooder)!)
    const pausedBefore = await paused()
    for (let i = 0; i < 100; i++) first.publish(topics.event(flooder), `junk again ${i}`, { qos: 0 })
    await expect.poll(paused, { timeout: 10_000 }).toBeGreaterThan(pausedBefore)
    // The device reconnects (its old link looked dead to it): aedes closes the paused one.
    const replaced = new Promise<void>((resolve) => first.once('close', () => resolve()))
    const second = await connectDevice(system.mqttUrl, flooder, flooder, secrets.get(flooder)!)
    const acks = await ackCollector(second, flooder)
    await replaced
    await second.publishAsync(topics.event(flooder), JSON.stringify({ seq: 2, type: 'press' }), { qos: 1 })
    expect((await acks.waitFor((a) => a.state === 'received' && a.seq === 2, 15_000)).alertId).toBeTruthy()
    expect(system.gateway.broker.connectedClients).toBe(1)
    await second.endAsync()
  })
})
