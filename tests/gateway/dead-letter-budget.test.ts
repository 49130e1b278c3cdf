/**
 * A device spraying junk has only so many dead letters kept whole a window: every refused
 * publish is still acknowledged, answered `rejected` with its reason and counted, but past the
 * device's budget it is not written, forwarded or stored one by one; at the window's end one
 * summary dead letter says how many more were refused, and why. Other devices keep their own
 * budget. Real broker, real sockets, real MQTT.js clients, the summary stored by the server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 60_000 })

const budget = { perWindow: 5, windowMs: 4000 }
const SUMMARY = /^over the dead-letter budget/

describe('dead-letter budget per device', () => {
  let system: TestSystem
  const secrets = new Map<string, string>()
  const sprayer = 'btn-dlb-spray'
  const other = 'btn-dlb-other'

  beforeAll(async () => {
    system = await startSystem({ gateway: { deadLetterBudget: budget } })
    for (const id of [sprayer, other]) secrets.set(id, await system.provision(id))
  })

  afterAll(async () => {
    await system?.stop()
  })

  const lettersOf = async (deviceId: string) => (await system.gateway.deadLetters.recent(1000)).filter((l) => l.deviceId === deviceId)

  it('keeps a few refused publishes whole, answers and counts every one, and tells the rest in one summary at the window\'s end', async () => {
    const spray = 60
    const device = await connectDevice(system.mqttUrl, sprayer, sprayer, secrets.get(sprayer)!)
    const acks = await ackCollector(device, sprayer)
    const bystander = await connectDevice(system.mqttUrl, other, other, secrets.get(other)!)
    const started = Date.now()
    await Promise.all(Array.from({ length: spray }, (_, i) => device.publishAsync(topics.event(sprayer), `junk ${i}`, { qos: 1 })))
    // Another device's refusals in the same window are its own, kept whole.
    await Promise.all([1, 2].map((i) => bystander.publishAsync(topics.event(other), `other junk ${i}`, { qos: 1 })))

    // Every one answered, with its reason, and counted.
    await expect.poll(() => acks.acks.filter((a) => a.state === 'rejected').length, { timeout: 15_000 }).toBe(spray)
    expect(acks.acks.filter((a) => a.state === 'rejected').every((a) => /not JSON/.test(a.reason ?? ''))).toBe(true)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total')).toBe(spray + 2)

    // A few kept whole a window (two windows if a slow machine took longer), the rest held back.
    const windows = Math.ceil((Date.now() - started) / budget.windowMs)
    const whole = (await lettersOf(sprayer)).filter((l) => !SUMMARY.test(l.reason))
    expect(whole.length).toBeGreaterThanOrEqual(budget.perWindow)
    expect(whole.length).toBeLessThanOrEqual(budget.perWindow * windows)
    const heldBack = await metricValue(system.gateway, 'sos_gateway_dead_letters_held_back_total')
    expect(heldBack).toBe(spray - whole.length)
    expect(await lettersOf(other)).toHaveLength(2)

    // At the window's end, the summaries account for every one held back: how many, and why.
    const summaries = await eventually(async () => {
      const found = (await lettersOf(sprayer)).filter((l) => SUMMARY.test(l.reason))
      const told = found.reduce((n, l) => n + Number(/: (\d+) more dead letters/.exec(l.reason)?.[1]), 0)
      return told === heldBack ? found : undefined
    }, 3 * budget.windowMs, 'summary dead letters for what was held back')
    expect(summaries.length).toBeLessThanOrEqual(windows)
    expect(summaries[0]!.reason).toMatch(/payload_is_not_json ×\d+/)
    expect(summaries[0]!.topic).toBe(topics.event(sprayer))

    // The server stores what was kept and the summary, not a row per packet.
    await eventually(async () => system.gateway.deadLetters.peekUnforwarded(1).length === 0 || undefined, 10_000, 'dead letters forwarded')
    const { body: stored } = await system.api('GET', `/v1/dead-letters?deviceId=${sprayer}&limit=1000`)
    expect(stored).toHaveLength(whole.length + summaries.length)
    const summary = (stored as Array<{ reason: string, payload: string }>).find((l) => SUMMARY.test(l.reason))!
    expect(JSON.parse(Buffer.from(summary.payload, 'base64').toString())).toMatchObject({ reasons: { payload_is_not_json: expect.any(Number) } })

    // A new window, a new budget: the next refusal is kept whole again.
    await device.publishAsync(topics.event(sprayer), 'junk after the window', { qos: 1 })
    await eventually(async () => (await lettersOf(sprayer)).filter((l) => !SUMMARY.test(l.reason)).length === whole.length + 1 || undefined, 5000, 'the next refusal kept whole')
    await device.endAsync()
    await bystander.endAsync()
  })
})
