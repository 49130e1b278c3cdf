/**
 * What a CONNECT costs the server: the gateway answers from its credential cache, and asks the
 * server about one device only when it must — an id it has never seen (once, however many
 * CONNECTs use it), or a known device whose secret no longer matches (a rotated secret is
 * accepted at once, not after the next refresh; a wrong password repeated asks at most once).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000 })

describe('credential lookups', () => {
  let system: TestSystem
  const open: MqttClient[] = []
  const lookups = (result: string) => metricValue(system.gateway, 'sos_gateway_credential_lookups_total', { result })

  beforeAll(async () => {
    // The production refresh interval: nothing here may rely on the periodic refresh.
    system = await startSystem({ gateway: { credentialRefreshMs: 60_000 } })
  })

  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true)))
    await system?.stop()
  })

  it('asks the server once about an unknown id, however many CONNECTs use it', async () => {
    const before = await lookups('unknown')
    // Concurrent and sequential attempts alike.
    await Promise.all(Array.from({ length: 10 }, () => expect(connectDevice(system.mqttUrl, 'btn-nobody-77', 'btn-nobody-77', 'guess')).rejects.toThrow(/Bad username or password/)))
    for (let i = 0; i < 10; i++) await expect(connectDevice(system.mqttUrl, 'btn-nobody-77', 'btn-nobody-77', 'guess')).rejects.toThrow(/Bad username or password/)
    expect(await lookups('unknown') - before).toBe(1)
  })

  it('accepts a rotated secret at once, refuses the old one, and asks at most once for repeated wrong passwords', async () => {
    const id = 'btn-rotate-1'
    const first = await system.provision(id)
    open.push(await connectDevice(system.mqttUrl, `${id}:a`, id, first))
    const { status, body } = await system.api('POST', `/v1/devices/${id}/secret`)
    expect(status).toBe(200)
    const rotated = (body as { secret: string }).secret
    expect(rotated).not.toBe(first)
    const found = await lookups('found')
    open.push(await connectDevice(system.mqttUrl, `${id}:b`, id, rotated))
    expect(await lookups('found') - found).toBe(1)
    await expect(connectDevice(system.mqttUrl, `${id}:c`, id, first)).rejects.toThrow(/Bad username or password/)
    for (let i = 0; i < 5; i++) await expect(connectDevice(system.mqttUrl, `${id}:d`, id, 'wrong-password')).rejects.toThrow(/Bad username or password/)
    // The rotation itself, then at most one recheck for all the wrong passwords.
    expect(await lookups('found') - found).toBeLessThanOrEqual(2)
  })
})
