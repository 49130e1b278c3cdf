/**
 * A raw MQTT packet fuzzer against the real gateway over TCP, for a bounded time
 * (FUZZ_MQTT_MS per phase, default 2.5 s): random bytes and mutated CONNECT / PUBLISH /
 * SUBSCRIBE / UNSUBSCRIBE / PINGREQ packets (made valid by mqtt-packet, then damaged), first
 * from unauthenticated sockets, then after a valid device CONNECT. Afterwards the gateway must
 * still be up, answer a fresh device quickly enough to connect and PUBACK, have bounded memory,
 * and keep nothing from unauthenticated clients: no session, subscription, retained message,
 * outbox entry, dead letter or cached credential.
 */
import { connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Sqlite from 'better-sqlite3'
import { OUTBOX_FILE } from '../../gateway/outbox/store.js'
import { connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { mutate, randomPacket, seededRandom, type Rng } from './packet-mutations.js'

const PHASE_MS = Number(process.env.FUZZ_MQTT_MS || 2500)
const PARALLEL = 8
const seed = Number(process.env.FUZZ_SEED || Date.now() % 2 ** 31)

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

describe(`raw MQTT packet fuzzing (seed ${seed}, FUZZ_SEED to replay)`, () => {
  let system: TestSystem
  const device = 'fz-mqtt-001'
  let secret: string
  let heapBefore: number
  const rng = seededRandom(seed)
  const stats = { sockets: 0, bytes: 0 }

  beforeAll(async () => {
    system = await startSystem()
    secret = await system.provision(device)
    // One legitimate connection first, so its credential lookup and caches are outside the heap delta.
    const warm = await connectDevice(system.mqttUrl, device, device, secret)
    await warm.endAsync()
    gc()
    heapBefore = process.memoryUsage().heapUsed
  })

  afterAll(async () => {
    await system?.stop()
  })

  /** One socket's life: maybe a valid CONNECT, then a handful of damaged packets, then gone. */
  async function fuzzSocket (authenticated: boolean, r: Rng): Promise<void> {
    const socket = tcpConnect({ host: '127.0.0.1', port: system.gateway.ports.mqtt })
    socket.on('error', () => {})
    socket.on('data', () => {})
    await new Promise<void>((resolve) => { socket.once('connect', resolve); socket.once('close', resolve) })
    stats.sockets++
    const context = { deviceId: device, secret, authenticated }
    const chunks: Buffer[] = []
    if (authenticated) chunks.push(randomPacket(r, 'valid-connect', context))
    const count = 1 + Math.floor(r() * 6)
    for (let i = 0; i < count; i++) {
      chunks.push(r() < 0.15 ? Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256))) : mutate(r, randomPacket(r, 'any', context)))
    }
    for (const chunk of chunks) {
      if (socket.destroyed) break
      socket.write(chunk)
      stats.bytes += chunk.length
      if (r() < 0.3) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await new Promise((resolve) => setTimeout(resolve, 5 + r() * 20))
    socket.destroy()
  }

  async function fuzzFor (ms: number, authenticated: boolean): Promise<void> {
    const until = Date.now() + ms
    await Promise.all(Array.from({ length: PARALLEL }, async (_, lane) => {
      const r = seededRandom(Math.floor(rng() * 2 ** 31) + lane)
      while (Date.now() < until) await fuzzSocket(authenticated, r)
    }))
  }

  it('survives damaged packets from unauthenticated sockets', async () => {
    await fuzzFor(PHASE_MS, false)
    expect(stats.sockets).toBeGreaterThan(PARALLEL)
    await expectHealthy()
  })

  it('survives damaged packets from an authenticated device', async () => {
    await fuzzFor(PHASE_MS, true)
    await expectHealthy()
  })

  it('keeps no state from unauthenticated clients and bounded memory', async () => {
    // Every fuzz socket is gone: no client, no offline session may remain.
    await expect.poll(() => system.gateway.broker.connectedClients, { timeout: 10_000 }).toBe(0)
    const persistence = (system.gateway.broker as unknown as { persistence: Persistence }).persistence
    const offline = await new Promise<[number, number]>((resolve, reject) =>
      persistence.countOffline((err, subs, clients) => err ? reject(err) : resolve([subs, clients])))
    expect(offline).toEqual([0, 0])

    const retained: string[] = []
    for await (const packet of persistence.createRetainedStreamCombi(['#', '$SYS/#'])) retained.push((packet as { topic: string }).topic)
    // Only the authenticated device may have left its own status.
    expect(retained.filter((t) => !t.startsWith('$SYS/') && t !== topics.status(device))).toEqual([])

    // Everything the gateway handed its state writer so far is on disk before it is read.
    await system.gateway.deadLetters.recent(1)
    const db = new Sqlite(join(system.dataDir, 'gateway', 'gateway.sqlite'), { readonly: true })
    const outboxDb = new Sqlite(join(system.dataDir, 'gateway', OUTBOX_FILE), { readonly: true })
    try {
      const outboxDevices = outboxDb.prepare('SELECT DISTINCT device_id AS d FROM outbox').all() as Array<{ d: string }>
      const deadLetterDevices = db.prepare('SELECT DISTINCT coalesce(device_id, \'(none)\') AS d FROM dead_letters').all() as Array<{ d: string }>
      const cached = db.prepare('SELECT id FROM credentials').all() as Array<{ id: string }>
      expect(outboxDevices.map((r) => r.d).filter((d) => d !== device)).toEqual([])
      expect(deadLetterDevices.map((r) => r.d).filter((d) => d !== device)).toEqual([])
      expect(cached.map((r) => r.id)).toEqual([device])
    } finally {
      db.close()
      outboxDb.close()
    }

    gc()
    const grownMB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20
    expect(grownMB, `heap grew ${grownMB.toFixed(1)} MB over ${stats.sockets} fuzz sockets`).toBeLessThan(64)
  })

  /** A fresh device connects, publishes at QoS 1 and gets its PUBACK. */
  async function expectHealthy (): Promise<void> {
    const client = await connectDevice(system.mqttUrl, `${device}:check`, device, secret)
    try {
      const seq = 1_000_000 + stats.sockets
      await client.publishAsync(topics.event(device), JSON.stringify({ seq, type: 'test' }), { qos: 1 })
    } finally {
      await client.endAsync()
    }
  }
})

interface Persistence {
  countOffline (cb: (err: Error | null, subscriptions: number, clients: number) => void): void
  createRetainedStreamCombi (patterns: string[]): AsyncIterable<unknown>
}
