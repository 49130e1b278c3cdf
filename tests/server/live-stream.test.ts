/**
 * The live stream's own limits: a token revoked while its stream is open ends the stream, and
 * a client that stops reading is let go before what it leaves unsent grows without end.
 */
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, TOKENS, type Fixture } from './fixture.js'
import { openStream } from './stream-client.js'

describe('live stream limits', () => {
  let fx: Fixture
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, { streamHeartbeatMs: 200 })
    await fx.app.listen({ port: 0, host: '127.0.0.1' })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('ends the stream of a token revoked while it is open', async () => {
    const { status, body } = await fx.call('POST', '/v1/tokens', { role: 'analyst', name: 'leaked' })
    expect(status).toBe(201)
    const stream = await openStream(fx, body.token)
    fx.app.services.bus.emit('device', { deviceId: 'btn-s1', change: 'registered' })
    await stream.waitFor('btn-s1')
    // An admin who kept no note of its id finds it by name.
    const { body: issued } = await fx.call('GET', '/v1/tokens')
    const listed = issued.find((t: { name: string }) => t.name === 'leaked')
    expect(listed).toMatchObject({ id: body.id, role: 'analyst', revokedAt: null })
    expect(JSON.stringify(issued)).not.toContain(body.token)
    expect((await fx.call('GET', '/v1/tokens', undefined, body.token)).status).toBe(403)
    expect((await fx.call('DELETE', `/v1/tokens/${listed.id}`)).status).toBe(204)
    expect((await fx.call('GET', '/v1/tokens')).body.find((t: { id: string }) => t.id === body.id).revokedAt).not.toBeNull()
    await stream.ended(5000)
    expect((await fx.call('GET', '/v1/alerts', undefined, body.token)).status).toBe(401)
    // A token still valid keeps its stream through the heartbeats.
    const kept = await openStream(fx, TOKENS.admin)
    await new Promise((resolve) => setTimeout(resolve, 600))
    fx.app.services.bus.emit('device', { deviceId: 'btn-s2', change: 'registered' })
    await kept.waitFor('btn-s2')
    await kept.close()
  })

  it('tells the stream of registry changes: a device provisioned, its secret rotated, revoked', async () => {
    const stream = await openStream(fx)
    await fx.provision('btn-reg-1')
    await stream.waitFor('"deviceId":"btn-reg-1","change":"registered"')
    expect((await fx.call('POST', '/v1/devices/btn-reg-1/secret')).status).toBe(200)
    await stream.waitFor('"deviceId":"btn-reg-1","change":"secret_rotated"')
    expect((await fx.call('DELETE', '/v1/devices/btn-reg-1')).status).toBe(204)
    await stream.waitFor('"deviceId":"btn-reg-1","change":"revoked"')
    await stream.close()
  })

  it('lets go of a client that stopped reading once a megabyte waits unsent', async () => {
    const { port } = fx.app.server.address() as AddressInfo
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(`GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.admin}\r\n\r\n`)
    // Subscribed once the stream's first line came; from then on it reads nothing: its buffers
    // fill, then the server's.
    await new Promise<void>((resolve) => {
      let head = ''
      const onData = (chunk: Buffer) => {
        head += chunk.toString()
        if (!head.includes('retry: 2000')) return
        socket.off('data', onData)
        socket.pause()
        resolve()
      }
      socket.on('data', onData)
    })
    // Far more than the kernel's socket buffers hold on both ends, and the server's megabyte.
    const events = 200_000
    const change = 'x'.repeat(100)
    for (let i = 0; i < events; i++) fx.app.services.bus.emit('device', { deviceId: `btn-flood-${i}`, change })
    const emitted = events * 150

    // Reading again: what arrives is bounded, and the stream is over.
    let received = 0
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.on('data', (chunk: Buffer) => { received += chunk.length })
    socket.resume()
    await Promise.race([closed, new Promise((resolve, reject) => setTimeout(() => reject(new Error(`still open after ${received} bytes`)), 10_000))])
    expect(received).toBeLessThan(emitted / 2)
  })
})
