/**
 * What a live-stream client that stops reading holds in the server. Before: each change was
 * written on into its socket until a megabyte waited there, four queued writes per change, and
 * a queued write costs more than its bytes (300 such clients and 20 000 alert changes took the
 * server from 120 MB to 1.28 GB). Now nothing more is written once the socket's buffer is full:
 * the changes wait in the live stream's replay, shared by all, and the client gets them when it
 * reads again, none missing, none twice. A real server, a real socket that does not read.
 */
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, TOKENS, type Fixture } from './fixture.js'

/** What the server may hold for one stuck client: its socket's buffer (16 KiB) and a change more. */
const BOUND = 64 * 1024
/** Changes made while the client is stuck: less than what lets it go (a megabyte), far more than BOUND. */
const WHILE_STUCK = 600 * 1024

const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('a live-stream client that stops reading', () => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const serverSockets: Socket[] = []

  beforeAll(async () => {
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
    fx.app.server.on('connection', (socket: Socket) => serverSockets.push(socket))
    await fx.app.listen({ port: 0, host: '127.0.0.1' })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('holds at most its socket\'s buffer for it, and gives it every change once it reads again', async () => {
    const { port } = fx.app.server.address() as AddressInfo
    const client = connect(port, '127.0.0.1')
    await new Promise((resolve) => client.once('connect', resolve))
    client.write(`GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.admin}\r\n\r\n`)
    let received = ''
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        received += chunk.toString()
        if (!received.includes('retry: 2000')) return
        client.off('data', onData)
        client.pause()
        resolve()
      }
      client.on('data', onData)
    })
    const server = serverSockets.find((s) => s.remotePort === client.localPort)!
    expect(server).toBeDefined()

    // Alert changes of a busy ward, each some 300 bytes on the stream.
    let n = 0
    let bytes = 0
    const change = () => {
      const data = { alertId: `alert-${String(n++).padStart(8, '0')}-${'x'.repeat(160)}`, deviceId: 'btn-stuck', state: 'open', kind: 'panic' }
      bytes += JSON.stringify(data).length + 60
      fx.app.services.bus.emit('alert', data)
    }
    // First the kernel's buffers fill, on both ends (megabytes on a loopback): until then
    // nothing waits in the server's process.
    while (server.writableLength === 0) {
      if (bytes > 64 << 20) throw new Error('the kernel took 64 MB without the socket filling up')
      for (let i = 0; i < 100; i++) change()
      await settle()
    }
    const firstStuck = n
    bytes = 0
    while (bytes < WHILE_STUCK) {
      for (let i = 0; i < 50; i++) change()
      await settle()
    }
    expect(server.destroyed, 'let go before it missed a megabyte').toBe(false)
    expect(server.writableLength, `bytes waiting in the server for a client stuck through ${n - firstStuck} changes`).toBeLessThan(BOUND)
    const lastId = n - 1

    // It reads again: every change, in order, each once.
    const ids: number[] = []
    let text = received
    client.on('data', (chunk: Buffer) => { text += chunk.toString() })
    client.resume()
    const deadline = Date.now() + 20_000
    for (;;) {
      ids.length = 0
      for (const m of text.matchAll(/"alertId":"alert-(\d{8})-/g)) ids.push(Number(m[1]))
      if (ids.at(-1) === lastId || Date.now() > deadline) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(ids.length, `changes received of ${n}`).toBe(n)
    expect(ids.every((id, i) => id === i), 'in order, none missing, none twice').toBe(true)
    // And it is live again.
    fx.app.services.bus.emit('device', { deviceId: 'btn-after-stuck', change: 'registered' })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no live change after catching up')), 10_000)
      const look = () => { if (text.includes('btn-after-stuck')) { clearTimeout(timer); resolve() } else setTimeout(look, 20) }
      look()
    })
    client.destroy()
  })
})
