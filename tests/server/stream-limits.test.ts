/**
 * How many live streams the server holds open: per token (STREAMS_PER_TOKEN) and in all
 * (STREAMS_TOTAL). Before: no bound, so one token (a tab reopening its stream in a loop, a
 * script) or many clients could hold as many as they liked, each with its socket and buffers.
 * Now one beyond is answered 429 in the API's error format, before anything is streamed, and a
 * stream that ends gives its place back. Real sockets, which do not read, on a real server.
 */
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { ConfigError, serverConfigFromEnv } from '../../server/config.js'
import { buildFixture, type Fixture } from './fixture.js'

describe('live stream limits per token and in all', () => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const sockets: Socket[] = []

  /**
   * Asks for the stream on a socket of its own that reads only the answer's head: the status,
   * and the JSON body of a refusal.
   */
  const openStream = async (token: string): Promise<{ status: number, body: any, socket: Socket }> => {
    const { port } = fx.app.server.address() as AddressInfo
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(`GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
    let text = ''
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer; got ${text}`)), 10_000)
      const onData = (chunk: Buffer) => {
        text += chunk.toString()
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1])
        const streaming = status === 200 && text.includes('retry: 2000')
        const refused = status !== 200 && /\r\n\r\n[\s\S]*\}/.test(text)
        if (!streaming && !refused) return
        clearTimeout(timer)
        socket.off('data', onData)
        // From here on it reads nothing.
        socket.pause()
        const body = refused ? JSON.parse(text.slice(text.indexOf('{'))) : null
        resolve({ status, body, socket })
      }
      socket.on('data', onData)
    })
  }

  beforeAll(async () => {
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    // From the environment, as the server reads it.
    const settings = serverConfigFromEnv({ STREAMS_PER_TOKEN: '2', STREAMS_TOTAL: '3' })
    fx = await buildFixture(opened.db, { settings })
    await fx.app.listen({ port: 0, host: '127.0.0.1' })
  }, 180_000)

  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await fx?.app.close()
    await dispose?.()
  })

  it('answers 429 past the limit of a token, and past the limit of the server, until a stream ends', async () => {
    const wallDisplay = await fx.tokenFor('operator')
    const desk = await fx.tokenFor('operator')
    const analyst = await fx.tokenFor('analyst')

    const first = await openStream(wallDisplay)
    const second = await openStream(wallDisplay)
    expect([first.status, second.status]).toEqual([200, 200])
    const third = await openStream(wallDisplay)
    expect(third.status).toBe(429)
    expect(third.body).toEqual({ statusCode: 429, code: 'TOO_MANY_STREAMS', message: expect.stringContaining('at most 2') })

    // Another token has its own: up to the server's limit.
    expect((await openStream(desk)).status).toBe(200)
    const full = await openStream(analyst)
    expect(full.status).toBe(429)
    expect(full.body).toEqual({ statusCode: 429, code: 'TOO_MANY_STREAMS', message: expect.stringContaining('at most 3') })

    // A stream that ends gives its place back (once the server saw it close).
    first.socket.destroy()
    let again = await openStream(analyst)
    for (let i = 0; i < 50 && again.status === 429; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      again = await openStream(analyst)
    }
    expect(again.status).toBe(200)
    expect((await openStream(wallDisplay)).status).toBe(429)
    // A refused request holds nothing: the other reads still work.
    expect((await fx.call('GET', '/v1/alerts', undefined, wallDisplay)).status).toBe(200)
  })

  it('reads the limits from the environment, with readable errors', () => {
    expect(serverConfigFromEnv({})).toMatchObject({ streamsPerToken: 20, streamsTotal: 500 })
    expect(() => serverConfigFromEnv({ STREAMS_PER_TOKEN: '0' })).toThrow(ConfigError)
    expect(() => serverConfigFromEnv({ STREAMS_TOTAL: 'lots' })).toThrow(/STREAMS_TOTAL must be a whole number ≥ 1, got "lots"/)
  })
})
