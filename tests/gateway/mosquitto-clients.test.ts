/**
 * A client we did not write: Debian's mosquitto_pub/mosquitto_sub with device credentials,
 * over TCP and over TLS (self-signed CA made with openssl here), and with a client
 * certificate whose CN is the device id instead of a password.
 */
import { spawn, execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { makeTestPki, type TestPki } from './tls-certs.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

const run = promisify(execFile)

/** Starts mosquitto_sub for one message and resolves once the broker has its subscription. */
function subscribeOnce (broker: TestSystem['gateway']['broker'], clientId: string, args: string[]): Promise<{ message: Promise<string> }> {
  const subscribed = new Promise<void>((resolve) => {
    const onSubscribe = (_subs: unknown, client: { id: string }) => {
      if (client.id !== clientId) return
      broker.off('subscribe', onSubscribe as never)
      resolve()
    }
    broker.on('subscribe', onSubscribe as never)
  })
  const child = spawn('mosquitto_sub', ['-C', '1', '-W', '60', '-i', clientId, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const message = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => code === 0 ? resolve(out.trim()) : reject(new Error(`mosquitto_sub exited ${code}: ${out}`)))
  })
  return Promise.race([subscribed.then(() => ({ message })), message.then(() => { throw new Error(`mosquitto_sub ended before subscribing: ${out}`) })])
}

describe('mosquitto clients', () => {
  let system: TestSystem
  let dir: string
  let pki: TestPki
  const id = 'btn-mosq-001'
  let secret: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-tls-'))
    pki = makeTestPki(dir)
    system = await startSystem({ gateway: { mqttTlsPort: 0, tlsCertFile: pki.serverCert, tlsKeyFile: pki.serverKey, tlsCaFile: pki.caCert } })
    secret = await system.provision(id)
  })

  afterAll(async () => {
    await system?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const storedSeqs = async () => ((await system.api('GET', `/v1/events?deviceId=${id}`)).body as any[]).map((e) => e.seq)

  it('publishes and receives the ack over TCP with device credentials', async () => {
    const port = String(system.gateway.ports.mqtt)
    const sub = await subscribeOnce(system.gateway.broker, `${id}:sub`, ['-h', '127.0.0.1', '-p', port, '-u', id, '-P', secret, '-q', '1', '-t', topics.ack(id)])
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-i', id, '-u', id, '-P', secret, '-q', '1', '-t', topics.event(id), '-m', '{"seq":1,"type":"press"}'])
    expect(JSON.parse(await sub.message)).toMatchObject({ seq: 1, state: 'received' })
    expect(await storedSeqs()).toContain(1)
  })

  it('publishes and receives the ack over TLS, verifying the gateway certificate', async () => {
    const port = String(system.gateway.ports.tls)
    const tls = ['-h', '127.0.0.1', '-p', port, '--cafile', pki.caCert]
    const sub = await subscribeOnce(system.gateway.broker, `${id}:tls`, [...tls, '-u', id, '-P', secret, '-q', '1', '-t', topics.ack(id)])
    await run('mosquitto_pub', [...tls, '-i', id, '-u', id, '-P', secret, '-q', '1', '-t', topics.event(id), '-m', '{"seq":2,"type":"press"}'])
    expect(JSON.parse(await sub.message)).toMatchObject({ seq: 2, state: 'received' })
  })

  it('refuses a wrong password over TLS', async () => {
    const port = String(system.gateway.ports.tls)
    await expect(run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '--cafile', pki.caCert, '-i', id, '-u', id, '-P', 'wrong', '-q', '1', '-t', topics.event(id), '-m', '{"seq":9,"type":"press"}']))
      .rejects.toThrow()
    expect(await storedSeqs()).not.toContain(9)
  })

  it('accepts a client certificate whose CN is the device id, instead of a password', async () => {
    const port = String(system.gateway.ports.tls)
    const { cert, key } = pki.clientCert(id)
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '--cafile', pki.caCert, '--cert', cert, '--key', key, '-i', id, '-q', '1', '-t', topics.event(id), '-m', '{"seq":3,"type":"press"}'])
    await eventually(async () => (await storedSeqs()).includes(3) ? true : undefined, 15_000, 'press 3 stored')
  })

  it('refuses a certificate for another device, and one from a CA we do not trust', async () => {
    const port = String(system.gateway.ports.tls)
    const other = pki.clientCert('btn-mosq-999')
    await expect(run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '--cafile', pki.caCert, '--cert', other.cert, '--key', other.key, '-i', id, '-q', '1', '-t', topics.event(id), '-m', '{"seq":10,"type":"press"}']))
      .rejects.toThrow()
    const rogue = pki.clientCert(id, 'rogue')
    await expect(run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '--cafile', pki.caCert, '--cert', rogue.cert, '--key', rogue.key, '-i', id, '-q', '1', '-t', topics.event(id), '-m', '{"seq":11,"type":"press"}']))
      .rejects.toThrow()
    expect(await storedSeqs()).not.toContain(10)
    expect(await storedSeqs()).not.toContain(11)
  })
})
