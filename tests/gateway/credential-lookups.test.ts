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
import { hashPin } from '../../protocol/secret-hash.js'

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

  it('refuses wrong passwords at once, for a device never seen here too, and never holds the device itself out', async () => {
    // A device id is printed on its pole: anyone can send wrong passwords for it. A secret is
    // 192 random bits, hashed once with SHA-256: checking one costs nothing worth queueing, so
    // a flood is all "Bad username or password", and a gateway new to the whole fleet (a
    // replacement) lets every device in at once instead of one scrypt after another.
    const checks = () => metricValue(system.gateway, 'sos_gateway_secret_checks_total', {})
    const ids = Array.from({ length: 40 }, (_, i) => `btn-fast-${i}`)
    const secrets = await Promise.all(ids.map((id) => system.provision(id)))
    const flooding = Promise.all(Array.from({ length: 300 }, (_, i) =>
      connectDevice(system.mqttUrl, `${ids[0]}:f${i}`, ids[0], `guess-${i}`, { connectTimeout: 30_000 }).then((c) => { c.end(true); return 'accepted' }, (err: Error) => err.message)))
    const fleet = await Promise.all(ids.map((id, i) => connectDevice(system.mqttUrl, id, id, secrets[i])))
    open.push(...fleet)
    expect(new Set(await flooding)).toEqual(new Set(['Connection refused: Bad username or password']))
    expect(await checks()).toBe(0)
  })

  it('checks a secret an older version hashed with scrypt once, then refuses wrong passwords for it without scrypt, after a restart too, and lines up the slow checks it owes', async () => {
    // Secrets provisioned before the fast form are scrypt hashes (16 MiB, tens of ms each, on
    // libuv's four threads) until rotated: a few hundred wrong passwords held every other
    // device's sign-in for seconds, after a gateway restart above all.
    const checks = (result?: string) => metricValue(system.gateway, 'sos_gateway_secret_checks_total', result ? { result } : {})
    const [known, victim, unseen, other] = ['btn-flood-known', 'btn-flood-victim', 'btn-flood-unseen', 'btn-flood-other']
    const secrets = new Map<string, string>()
    for (const id of [known, victim, unseen, other]) {
      const secret = await system.provision(id)
      secrets.set(id, secret)
      await system.server.db.query('UPDATE devices SET secret_hash = $2 WHERE id = $1', [id, await hashPin(secret)])
    }
    for (const id of [known, victim]) await (await connectDevice(system.mqttUrl, id, id, secrets.get(id))).endAsync()
    await system.restartGateway()
    const flood = (id: string, n: number) => Promise.all(Array.from({ length: n }, (_, i) =>
      connectDevice(system.mqttUrl, `${id}:f${i}`, id, `guess-${i}`, { connectTimeout: 30_000 }).then((c) => { c.end(true); return 'accepted' }, (err: Error) => err.message)))

    // Verified before the restart: refused at once, no slow check, for the flood and the device alike.
    const refusals = await flood(known, 100)
    expect(new Set(refusals)).toEqual(new Set(['Connection refused: Bad username or password']))
    open.push(await connectDevice(system.mqttUrl, victim, victim, secrets.get(victim)))
    expect(await checks()).toBe(0)

    // Never verified here: each guess owes a slow check, one at a time per device, two at a time
    // and 32 in line in all; the rest hear "server unavailable" (and try again later), so the
    // line never grows, and guesses at one id leave room for every other device's first sign-in.
    const flooding = flood(unseen, 100)
    open.push(await connectDevice(system.mqttUrl, other, other, secrets.get(other), { connectTimeout: 30_000 }))
    const answers = await flooding
    expect(answers.filter((a) => /Server unavailable/.test(a)).length).toBe(await checks('busy'))
    expect(await checks('busy')).toBeGreaterThan(0)
    expect(await checks('mismatch')).toBe(100 - await checks('busy'))
    expect(await checks('mismatch')).toBeLessThan(50)
    expect(answers.filter((a) => /Bad username or password/.test(a)).length).toBe(await checks('mismatch'))
    open.push(await connectDevice(system.mqttUrl, unseen, unseen, secrets.get(unseen)))
    expect(await checks('match')).toBe(2)
  })
})
