/**
 * A cancel resent at QoS 1 (its PUBACK lost: MQTT's dup flag, or the firmware's own retry of the
 * same seq) is the same cancel, stored once: over a real broker, it must not use the cancel
 * budget again. Charged again, a shop owner who had used the last of it heard `rate_limited`
 * for a cancel that had in fact stood the alarm down.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { CANCEL_LIMIT } from '../../gateway/rate-limiter.js'
import { topics } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

describe('a cancel resent after its PUBACK was lost', () => {
  let system: TestSystem
  let device: MqttClient
  const id = 'ctr-resend-1'
  const pin = '2468'

  beforeAll(async () => {
    system = await startSystem()
    device = await connectDevice(system.mqttUrl, id, id, await system.provision(id, { kind: 'counter', pin }))
  })

  afterAll(async () => {
    device?.end(true)
    await system?.stop()
  })

  it('is not charged to the cancel budget again, and hears what the cancel came to, not rate_limited', async () => {
    const acks = await ackCollector(device, id)
    const send = (seq: number, type: string, extra: Record<string, unknown> = {}, dup = false) =>
      device.publishAsync(topics.event(id), JSON.stringify({ seq, type, ...extra }), { qos: 1, dup })
    await send(1, 'press')
    const { alertId } = await acks.waitFor((a) => a.seq === 1 && a.state === 'received', 15_000)
    // Mistyped PINs, then the right one: the whole budget.
    const wrong = Array.from({ length: CANCEL_LIMIT.burst - 1 }, (_, i) => i + 2)
    for (const seq of wrong) await send(seq, 'cancel', { pin: '0000' })
    const last = CANCEL_LIMIT.burst + 1
    await send(last, 'cancel', { pin })
    await acks.waitFor((a) => a.seq === last && a.state === 'cancelled', 15_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Once: the alert's own ack (the server's downlink), not its result as well (reviews 71, 72).
    // The two come by different paths, in either order.
    expect(acks.acks.filter((a) => a.seq === last).map((a) => a.state).sort()).toEqual(['cancelled', 'received'])

    // Its PUBACK lost: resent by MQTT (dup), and again by the firmware's own retry.
    await send(last, 'cancel', { pin }, true)
    await send(last, 'cancel', { pin })
    const answers = () => acks.acks.filter((a) => a.seq === last)
    // A resend reaches the server, which answers it as it answered the cancel: `cancelled` again,
    // which the device resending may not have heard.
    await eventually(async () => answers().filter((a) => a.state === 'cancelled').length >= 2 || undefined, 15_000, 'a resend answered by the server')
    expect(answers().filter((a) => a.state === 'rejected')).toEqual([])
    expect(await metricValue(system.gateway, 'sos_gateway_events_shed_total', { type: 'cancel', reason: 'rate_limited' })).toBe(0)

    // The budget is still spent: a new cancel is refused.
    await send(last + 1, 'cancel', { pin })
    expect(await acks.waitFor((a) => a.seq === last + 1, 15_000)).toMatchObject({ state: 'rejected', reason: 'rate_limited' })
    // Stored once each.
    const { body: stored } = await system.api('GET', `/v1/events?deviceId=${id}&type=cancel`)
    expect((stored as Array<{ seq: number }>).map((e) => e.seq).sort((x, y) => x - y)).toEqual([...wrong, last])
    const { body: alert } = await system.api('GET', `/v1/alerts/${alertId}`)
    expect(alert.state).toBe('cancelled')
  })
})
