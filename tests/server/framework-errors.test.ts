/**
 * What the router and Node's HTTP parser refuse, before any route runs, is answered in the
 * contract's error shape `{statusCode, code, message}` like everything else (review 61: a 431
 * said `{error, message, statusCode}`, a malformed header `{"error":"Bad Request","message":"Client
 * Error"}`, and a bad URL kept fastify's `FST_ERR_` prefix). Over a real socket: these never
 * reach `inject`.
 */
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, TOKENS, type Fixture } from './fixture.js'

const backend = databaseBackends[0]! // embedded PGlite: the HTTP layer is what is tested
let fx: Fixture
let dispose: () => Promise<void>
let port: number

beforeAll(async () => {
  const opened = await backend.open()
  dispose = opened.dispose
  fx = await buildFixture(opened.db)
  await fx.app.listen({ port: 0, host: '127.0.0.1' })
  port = (fx.app.server.address() as { port: number }).port
}, 180_000)

afterAll(async () => {
  await fx?.app.close()
  await dispose?.()
})

/** Sends raw bytes, reads the whole answer until the server closes or 3 s pass. */
function raw (request: string): Promise<{ status: number, body: any }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.setTimeout(3000, () => socket.end())
    socket.on('data', (chunk) => {
      answer += chunk
      // A kept-alive answer ends at its Content-Length: stop reading there.
      const length = /content-length: (\d+)/i.exec(answer)?.[1]
      const bodyStart = answer.indexOf('\r\n\r\n')
      if (length && bodyStart >= 0 && Buffer.byteLength(answer.slice(bodyStart + 4)) >= Number(length)) socket.end()
    })
    socket.on('error', reject)
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])
      const body = answer.slice(answer.indexOf('\r\n\r\n') + 4)
      try { resolve({ status, body: JSON.parse(body) }) } catch { reject(new Error(`not JSON: ${answer}`)) }
    })
    socket.write(request)
  })
}

describe('errors raised before any route runs', () => {
  it('headers over the limit: 431 in the contract shape', async () => {
    const { status, body } = await raw(`GET /v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.admin}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(status).toBe(431)
    expect(body).toEqual({ statusCode: 431, code: 'HEADERS_TOO_LARGE', message: expect.any(String) })
  })

  it('a malformed header line: 400 in the contract shape', async () => {
    const { status, body } = await raw('GET /v1/alerts HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n')
    expect(status).toBe(400)
    expect(body).toEqual({ statusCode: 400, code: 'MALFORMED_REQUEST', message: expect.stringMatching(/could not be read as HTTP/) })
  })

  it('a path that is not valid percent-encoding: 400 with our code, no framework prefix', async () => {
    const { status, body } = await raw(`GET /v1/alerts/%E0%A4%A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.admin}\r\n\r\n`)
    expect(status).toBe(400)
    expect(body).toEqual({ statusCode: 400, code: 'BAD_URL', message: expect.any(String) })
  })
})
