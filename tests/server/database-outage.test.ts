/**
 * The database away (PostgreSQL restarting, its host down, the network between cut): each
 * request that needed it is answered 503 DATABASE_UNAVAILABLE with Retry-After, which the
 * gateway and the console retry and the console words as such, not 500 "Internal Server Error";
 * the log tells the outage in a few lines a minute, not a stack per request (the gateway's lanes
 * and every console retry within seconds); and once the database is back, everything works
 * again without a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { openPostgres, QueryDeadlineExceeded } from '../../server/db/postgres.js'
import { databaseUnreachable } from '../../server/db/unreachable.js'
import type { Database } from '../../server/db/database.js'
import { PassRunner } from '../../server/escalation/pass-runner.js'
import { ServerMetrics } from '../../server/metrics.js'
import { buildFixture, gatewayEvent, TOKENS, type Fixture } from './fixture.js'

describe('what is a database outage', () => {
  it('tells a lost or refused connection from a request\'s fault or a bug', () => {
    const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code })
    for (const outage of [
      coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
      coded('ETIMEDOUT'),
      coded('57P01', 'terminating connection due to administrator command'),
      coded('57P03', 'the database system is starting up'),
      coded('53300', 'sorry, too many clients already'),
      coded('08006'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new QueryDeadlineExceeded(20_000),
      new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'connect failed'),
      new Error('storing the batch failed', { cause: coded('ECONNRESET') })
    ]) expect(databaseUnreachable(outage), String(outage)).toBe(true)
    for (const fault of [
      coded('23505', 'duplicate key value violates unique constraint'),
      coded('22P02', 'invalid input syntax for type uuid'),
      coded('42P01', 'relation "alerts" does not exist'),
      coded('57014', 'canceling statement due to statement timeout'),
      // A query of ours with the wrong number of parameters (a bug), on pg and PGlite alike.
      coded('08P01', 'bind message supplies 1 parameters, but prepared statement "" requires 2'),
      new TypeError('Cannot read properties of undefined'),
      new Error('Connection refused by the webhook receiver'),
      'Connection terminated',
      null,
      undefined
    ]) expect(databaseUnreachable(fault), String(fault)).toBe(false)
  })
})

describe('a background loop while the database is unreachable', () => {
  it('logs its first failed passes of a minute in full and counts the rest; any other failure every time', async () => {
    const lines: Array<{ msg: string, loop?: string, passes?: number }> = []
    const sink = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
    const noDatabase = { query: async () => [] } as unknown as Database
    const runner = new PassRunner({ loop: 'escalator', deadlineMs: 1000, fallback: 0, failedMessage: 'escalation check failed' }, new ServerMetrics(noDatabase), pino(sink))
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    for (let i = 0; i < 10; i++) expect(await runner.run(async () => { throw refused })).toBe(0)
    expect(lines.map((line) => line.msg)).toEqual(Array(3).fill('escalation check failed'))
    // A bug is no outage: each is logged.
    for (let i = 0; i < 2; i++) await runner.run(async () => { throw new TypeError('x is undefined') })
    expect(lines).toHaveLength(5)
    await runner.settled()
    expect(lines.at(-1)).toMatchObject({ msg: 'more escalator passes failed: the database is unreachable or has no free connection (not logged one by one)', loop: 'escalator', passes: 7 })
  })
})

describe.skipIf(!testDatabaseUrl)('requests while the database is unreachable (needs TEST_DATABASE_URL)', () => {
  let drop: () => Promise<void>
  let db: Database
  let fx: Fixture
  let link: CuttableLink
  const lines: Array<{ level: number, msg: string, requests?: number, err?: { message: string } }> = []

  beforeAll(async () => {
    let url: string
    ({ url, drop } = await createTestDatabase())
    const target = new URL(url)
    link = await cuttableLink(Number(target.port || 5432), target.hostname)
    target.hostname = '127.0.0.1'
    target.port = String(link.port)
    db = await openPostgres(target.toString(), { connectMs: 1000 })
    const sink = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
    fx = await buildFixture(db, { logger: pino({ level: 'info' }, sink), settings: { escalateAfterMs: 3_600_000 } })
  }, 180_000)

  afterAll(async () => {
    await link?.restore()
    await fx?.app.close()
    await db?.close()
    link?.close()
    await drop?.()
  })

  it('answers 503 with Retry-After, logs a few lines, and serves again once it is back', async () => {
    await fx.provision('btn-outage-1')
    const operator = await fx.tokenFor('operator')
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-outage-1', { seq: 1, type: 'press' }, Date.now())] })

    await link.cut()
    const answers = []
    for (let i = 0; i < 6; i++) {
      // An admin read (a token from configuration), an operator's acknowledgement (its token
      // is looked up in the database), a gateway's batch.
      answers.push(await fx.app.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${TOKENS.admin}` } }))
      answers.push(await fx.app.inject({ method: 'POST', url: `/v1/alerts/${press!.alertId}/acknowledge`, headers: { authorization: `Bearer ${operator}` } }))
      answers.push(await fx.app.inject({
        method: 'POST',
        url: '/v1/ingest',
        headers: { authorization: `Bearer ${TOKENS.gateway}` },
        payload: { events: [gatewayEvent('btn-outage-1', { seq: 2 + i, type: 'heartbeat' }, Date.now())] }
      }))
    }
    for (const answer of answers) {
      expect(answer.statusCode, answer.body).toBe(503)
      expect(answer.headers['retry-after']).toBe('5')
      expect(answer.json()).toMatchObject({ statusCode: 503, code: 'DATABASE_UNAVAILABLE' })
    }
    const failedLines = lines.filter((line) => line.msg.startsWith('request failed'))
    expect(failedLines.map((line) => line.msg)).toEqual(Array(3).fill('request failed: the database is unreachable or has no free connection'))

    await link.restore()
    const acknowledged = await fx.call('POST', `/v1/alerts/${press!.alertId}/acknowledge`, undefined, operator)
    expect(acknowledged.status).toBe(200)
    expect(acknowledged.body.state).toBe('acknowledged')

    // The rest of the minute's failures, in one line (told at once when the server stops).
    await fx.app.close()
    expect(lines.filter((line) => line.msg.startsWith('more requests failed'))).toEqual([
      expect.objectContaining({ level: 50, requests: answers.length - 3 })
    ])
  })
})

interface CuttableLink {
  port: number
  /** Closes every connection through it, and refuses new ones, as a database that went down. */
  cut(): Promise<void>
  /** Takes connections again, on the same port. */
  restore(): Promise<void>
  close(): void
}

/** A TCP proxy to the database that can be cut and restored. */
async function cuttableLink (targetPort: number, targetHost: string): Promise<CuttableLink> {
  const sockets = new Set<net.Socket>()
  const accept = (client: net.Socket) => {
    const database = net.connect(targetPort, targetHost)
    for (const socket of [client, database]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => { sockets.delete(socket); client.destroy(); database.destroy() })
    }
    client.pipe(database).pipe(client)
  }
  let server = net.createServer(accept)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    async cut () {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
    },
    async restore () {
      if (server.listening) return
      server = net.createServer(accept)
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    },
    close () {
      for (const socket of sockets) socket.destroy()
      server.close()
    }
  }
}
