/**
 * A gateway that goes away (its host lost, its link to the server cut) cannot report its own
 * devices offline: the server notices that the gateway stopped calling and reports them, and
 * resolves that when a device is heard again. Real server and gateway over real sockets; the
 * intervals are shortened (the gateway's long poll to 200 ms, the watch to 3 s).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { GATEWAY_WATCH_ACTOR } from '../../server/supervision/gateway-watch.js'

const LOST_AFTER = 3000
/** A ward's name, as gateways are often called: not Latin-1, so it travels percent-encoded. */
const GATEWAY = 'gw-phường-1'

describe('a lost gateway', () => {
  let system: TestSystem
  let device: MqttClient | undefined
  const id = 'btn-behind-gw'

  beforeAll(async () => {
    system = await startSystem({ server: { gatewayLostAfterMs: LOST_AFTER }, gateway: { gatewayId: GATEWAY, downlinkWaitMs: 200 } })
  })

  afterAll(async () => {
    await device?.endAsync(true)
    await system?.stop()
  })

  const offlineAlerts = async () => (await system.api('GET', `/v1/alerts?kind=device_offline&deviceId=${id}`)).body as any[]

  it('has its devices reported offline by the server, each resolved when it is heard again', async () => {
    const secret = await system.provision(id)
    device = await connectDevice(system.mqttUrl, id, id, secret)
    const acks = await ackCollector(device, id)
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'test' }), { qos: 1 })
    await acks.waitFor((a) => a.seq === 1 && a.state === 'received')

    // Alive, the gateway keeps calling (its long poll) with nothing to forward: nothing raised.
    await new Promise((resolve) => setTimeout(resolve, LOST_AFTER + 1000))
    expect(await offlineAlerts()).toEqual([])

    // The gateway goes, without a word about its devices (as a host that loses power).
    await device.endAsync(true)
    device = undefined
    await system.stopGateway()
    const raised = await eventually(async () => (await offlineAlerts())[0], 10_000, 'device_offline alert')
    expect(raised).toMatchObject({ kind: 'device_offline', state: 'open' })
    const { body: opened } = await system.api('GET', `/v1/alerts/${raised.id}`)
    expect(opened.transitions[0]).toMatchObject({ to: 'open', actor: GATEWAY_WATCH_ACTOR, note: expect.stringContaining(`gateway ${GATEWAY} not heard from`) })

    // Back: its calls alone resolve nothing (the device may be gone with it)...
    await system.startGateway()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect((await system.api('GET', `/v1/alerts/${raised.id}`)).body.state).toBe('open')
    // ...the device heard again does.
    device = await connectDevice(system.mqttUrl, id, id, secret)
    const again = await ackCollector(device, id)
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 2, type: 'test' }), { qos: 1 })
    await again.waitFor((a) => a.seq === 2 && a.state === 'received')
    const resolved = await eventually(async () => {
      const { body } = await system.api('GET', `/v1/alerts/${raised.id}`)
      return body.state === 'resolved' ? body : undefined
    }, 10_000, 'alert resolved')
    // By the watch (its event), or by the gateway had it reported the device back online first.
    expect([`${GATEWAY_WATCH_ACTOR} heard again through gateway ${GATEWAY}`, `gateway:${GATEWAY} back online`])
      .toContain(`${resolved.transitions.at(-1).actor} ${resolved.transitions.at(-1).note}`)
  })
})
