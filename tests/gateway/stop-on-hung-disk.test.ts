/**
 * Stopping a gateway (SIGTERM: a deploy, a reboot) while its disk hangs. A thread stuck in a
 * write cannot be stopped: a normal exit joins every thread, so it waits for the disk, and then
 * aborts the thread mid-statement (better-sqlite3 takes the process down with a core dump). The
 * gateway instead gives up within its limit, says so, and ends by SIGKILL, which the kernel
 * completes once the stuck threads return: nothing, not even SIGKILL, ends them sooner.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { startServer, type RunningServer } from '../../server/server.js'
import { connectDevice } from '../helpers/system.js'
import { createHangingDisk, hangingDiskMissing, type HangingDisk } from '../helpers/hanging-disk.js'
import { topics } from '../../protocol/index.js'
import { spawnGateway, type GatewayProcess } from './gateway-process.js'

vi.setConfig({ hookTimeout: 240_000, testTimeout: 120_000 })

const missing = hangingDiskMissing()
if (missing && process.env.CI) throw new Error(`the hung-disk stop test cannot run under CI: ${missing}`)

const adminToken = `admin_${randomBytes(12).toString('hex')}`
const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
const id = 'btn-stop-001'

describe.skipIf(missing !== undefined)('stopping a gateway whose disk hangs', () => {
  let disk: HangingDisk | undefined
  let server: RunningServer | undefined
  let gateway: GatewayProcess | undefined
  const serverDir = mkdtempSync(join(tmpdir(), 'sos-stop-'))

  afterAll(async () => {
    gateway?.child.kill('SIGKILL')
    disk?.resume()
    await gateway?.exited
    await server?.close()
    disk?.dispose()
    rmSync(serverDir, { recursive: true, force: true })
  })

  it('gives up on the disk within its limit, says so, and is gone by SIGKILL the moment the disk answers', async () => {
    disk = createHangingDisk()
    server = await startServer({ httpPort: 0, httpHost: '127.0.0.1', dataDir: serverDir, adminToken, gatewayToken, logLevel: 'silent' })
    const created = await fetch(`${server.url}/v1/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, kind: 'button', name: id, zone: 'apd-1', lat: 10.86, lon: 106.7 })
    }).then((r) => r.json()) as { secret: string }
    gateway = await spawnGateway({ GATEWAY_TOKEN: gatewayToken, SERVER_URL: server.url, DATA_DIR: disk.dir, GATEWAY_ID: 'gw-stop' })
    const device = await connectDevice(`mqtt://127.0.0.1:${gateway.mqttPort}`, id, id, created.secret)
    try {
      await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'heartbeat' }), { qos: 1 })

      disk.hang(90_000)
      // A refusal (a state write) and a heartbeat (an outbox write) caught in the next journal
      // commit, which hangs; then one more refusal, whose write waits behind it.
      await device.publishAsync(topics.event(id), 'not json', { qos: 1 })
      void device.publishAsync(topics.event(id), JSON.stringify({ seq: 2, type: 'heartbeat' }), { qos: 1 }).catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, 6500))
      await device.publishAsync(topics.event(id), 'still not json', { qos: 1 })
    } finally {
      device.end(true)
    }

    const stoppingAt = Date.now()
    gateway.child.kill('SIGTERM')
    const said = () => gateway!.logs.some((line) => /ending the process \(SIGKILL/.test(line))
    while (!said() && Date.now() - stoppingAt < 30_000) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(said(), 'gave up on the disk and said so: ' + gateway.logs.slice(-5).join('\n')).toBe(true)
    expect(Date.now() - stoppingAt, 'within the stop\'s limit').toBeLessThan(20_000)

    // The disk answers: the process is gone at once, killed, not aborted nor exited.
    disk.resume()
    const ended = await Promise.race([gateway.exited.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 10_000))])
    expect(ended).toBe(true)
    expect(gateway.child.signalCode).toBe('SIGKILL')
  })
})
