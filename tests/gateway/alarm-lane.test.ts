/**
 * The alarm lane never makes one device's alarm wait for another's: with a request of one
 * device held on its way to the server (as a cancel's PIN check or a slow network would hold
 * it), another device's press goes beside it and is stored; the held device's next alarm waits
 * for its first, so each device's alarms still arrive in order.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startServer, type RunningServer } from '../../server/server.js'
import { startGateway, type RunningGateway } from '../../gateway/gateway.js'
import { connectDevice, eventually, quietLog } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { startRecordingProxy, type RecordingProxy } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

const adminToken = `admin_${randomBytes(12).toString('hex')}`
const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
const ids = ['btn-lane-a', 'btn-lane-b'] as const

describe('alarm lane', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-lane-'))
  let server: RunningServer
  let proxy: RecordingProxy
  let gateway: RunningGateway
  const devices: Record<string, MqttClient> = {}

  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    return response.json()
  }
  const press = (id: string, seq: number) => devices[id]!.publishAsync(topics.event(id), JSON.stringify({ seq, type: 'press' }), { qos: 1 })
  const storedSeqs = async (id: string): Promise<number[]> => ((await api('GET', `/v1/events?deviceId=${id}&limit=100`)) as any[]).map((e) => e.seq).sort((x, y) => x - y)
  const sentSeqs = (id: string) => proxy.batches.flatMap((b) => b.events).filter((e) => e.deviceId === id).map((e) => e.event.seq)

  beforeAll(async () => {
    server = await startServer({ httpPort: 0, httpHost: '127.0.0.1', dataDir: join(dir, 'server'), adminToken, gatewayToken, logLevel: 'silent' })
    const secrets = await Promise.all(ids.map(async (id) => (await api('POST', '/v1/devices', { id, kind: 'button', name: id, zone: 'apd-1', lat: 10.86, lon: 106.7 })).secret as string))
    proxy = await startRecordingProxy(server.url)
    gateway = await startGateway({
      gatewayId: 'gw-lane', mqttHost: '127.0.0.1', mqttPort: 0, mqttWsPort: 0, dataDir: join(dir, 'gw'),
      serverUrl: proxy.url, gatewayToken, credentialRefreshMs: 30_000, forwardBatchSize: 100, logLevel: 'silent'
    }, quietLog)
    for (const [i, id] of ids.entries()) devices[id] = await connectDevice(`mqtt://127.0.0.1:${gateway.ports.mqtt}`, id, id, secrets[i]!)
  })

  afterAll(async () => {
    for (const d of Object.values(devices)) d.end(true)
    await gateway?.stop()
    await proxy?.close()
    await server?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('sends a press beside another device\'s request in flight, and keeps each device\'s alarms in order', async () => {
    const [a, b] = ids
    // Device A's first request is held on its way to the server.
    proxy.hold = (batch) => batch.events.some((e) => e.deviceId === a)
    await press(a, 1)
    await eventually(async () => proxy.holding === 1 || undefined, 10_000, 'A\'s first press held on its way')
    await press(a, 2)
    // B's press is not behind A's: it reaches the server and is stored while A's is still held.
    await press(b, 1)
    await eventually(async () => (await storedSeqs(b)).length === 1 || undefined, 20_000, 'B\'s press stored while A\'s request is held')
    expect(proxy.holding).toBe(1)
    // A's second press waits for its first: it has not been sent, and A has nothing stored.
    expect(sentSeqs(a)).toEqual([1])
    expect(await storedSeqs(a)).toEqual([])

    proxy.hold = undefined
    proxy.release()
    await eventually(async () => (await storedSeqs(a)).length === 2 || undefined, 20_000, 'A\'s presses stored once released')
    const sent = sentSeqs(a)
    expect(sent.filter((seq, i) => sent.indexOf(seq) === i)).toEqual([1, 2])
    expect(await storedSeqs(b)).toEqual([1])
    await eventually(async () => gateway.outbox.depth() === 0 || undefined, 10_000, 'outbox empty')
  })

  it('does not hide a press behind another device\'s flood of presses (a bouncing button, a stolen secret)', async () => {
    const [a, b] = ids
    // A floods: far more presses than a request holds (forwardBatchSize is 100), its first
    // request held on its way; every later press of A waits for it, in order.
    proxy.hold = (batch) => batch.events.some((e) => e.deviceId === a)
    await Promise.all(Array.from({ length: 700 }, (_, i) => press(a, 100 + i)))
    await eventually(async () => proxy.holding === 1 || undefined, 10_000, 'A\'s first request held on its way')
    // B's press is behind some six hundred of A's in the lane; it must go at once all the same.
    await press(b, 2)
    await eventually(async () => (await storedSeqs(b)).includes(2) || undefined, 20_000, 'B\'s press stored while A\'s flood waits')
    expect(proxy.holding).toBe(1)

    proxy.hold = undefined
    proxy.release()
    await eventually(async () => gateway.outbox.depth() === 0 || undefined, 60_000, 'A\'s flood forwarded')
    const sent = sentSeqs(a).filter((seq) => seq >= 100)
    expect(sent.filter((seq, i) => sent.indexOf(seq) === i), 'A\'s presses in order').toEqual(Array.from({ length: 700 }, (_, i) => 100 + i))
  })
})
