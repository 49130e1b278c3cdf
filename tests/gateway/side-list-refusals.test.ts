/**
 * A server that refuses one presence change of a batch (400, as an older or stricter server
 * would) costs only that change: the events go alone, the presence changes apart, halved down to
 * the one refused, which is counted and let go; the others reach the server. Through a real
 * proxy between a real gateway and a real server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { metricValue, startRecordingProxy, type RecordingProxy } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000 })

describe('presence changes the server refuses', () => {
  let system: TestSystem
  let proxy: RecordingProxy
  const ids = { starter: 'btn-side-000', good: 'btn-side-001', poison: 'btn-side-666', other: 'btn-side-002' }
  const secrets: Record<string, string> = {}

  beforeAll(async () => {
    system = await startSystem({ gatewayServerUrl: async (url) => { proxy = await startRecordingProxy(url); return proxy.url } })
    for (const id of Object.values(ids)) secrets[id] = await system.provision(id)
  })

  afterAll(async () => {
    await proxy?.close()
    await system?.stop()
  })

  const online = async (id: string) => (await system.api('GET', `/v1/devices/${id}`)).body.online

  it('lets go of the refused change only; the others beside it reach the server', async () => {
    const hasPresenceOf = (id: string) => (batch: { presence?: Array<{ deviceId: string }> }) => batch.presence?.some((p) => p.deviceId === id) === true
    proxy.refuse = hasPresenceOf(ids.poison)
    // The starter's change is held on its way, so the next three wait and go in one batch.
    proxy.hold = hasPresenceOf(ids.starter)
    const clients = [await connectDevice(system.mqttUrl, ids.starter, ids.starter, secrets[ids.starter])]
    await expect.poll(() => proxy.holding).toBe(1)
    proxy.hold = undefined
    for (const id of [ids.good, ids.poison, ids.other]) clients.push(await connectDevice(system.mqttUrl, id, id, secrets[id]))
    proxy.release()

    await expect.poll(() => proxy.batches.some((b) => (b.presence ?? []).length === 3), { timeout: 10_000 }).toBe(true)
    await expect.poll(async () => [await online(ids.good), await online(ids.other)], { timeout: 10_000 }).toEqual([true, true])
    await expect.poll(() => metricValue(system.gateway, 'sos_gateway_forward_refused_total', { kind: 'presence' }), { timeout: 10_000 }).toBe(1)
    expect(await online(ids.poison)).not.toBe(true)
    await expect.poll(() => system.gateway.presence.peek(10)).toEqual([])
    for (const client of clients) await client.endAsync()
  })

  it('lets nothing go while the server (or a proxy gone wrong) answers 400 to everything', async () => {
    proxy.refuse = () => true
    const refusedBefore = await metricValue(system.gateway, 'sos_gateway_forward_refused_total')
    const id = 'btn-side-003'
    const secret = await system.provision(id)
    const client = await connectDevice(system.mqttUrl, id, id, secret)
    // Refused again and again, never let go, and asked again about once a second, not in a spin.
    const tries = () => proxy.batches.filter((b) => (b.presence ?? []).some((p) => p.deviceId === id)).length
    await expect.poll(tries, { timeout: 10_000 }).toBeGreaterThan(0)
    const first = tries()
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect(tries() - first).toBeLessThanOrEqual(6)
    expect(tries() - first).toBeGreaterThanOrEqual(1)
    expect(await metricValue(system.gateway, 'sos_gateway_forward_refused_total')).toBe(refusedBefore)
    proxy.refuse = undefined
    await expect.poll(() => online(id), { timeout: 15_000 }).toBe(true)
    await client.endAsync()
  })
})
