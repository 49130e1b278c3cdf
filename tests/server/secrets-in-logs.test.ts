/**
 * No secret reaches the log. No route reads a token from the query string, but people put one
 * there anyway (`?token=`, `?access_token=`: what other APIs and EventSource examples do), and
 * the per-request log lines carried the whole URL, so the bearer token sat in every log file
 * and log shipper. Query values whose names say they are secret are now written as "[redacted]";
 * the rest of the URL stays, for whoever reads the log. A webhook receiver is named by its origin
 * alone: an incoming-webhook URL's path is often its credential.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { Writable } from 'node:stream'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

describe('secrets in request logs', () => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const lines: string[] = []
  // A receiver that is down, at a URL whose path is its credential.
  const receiver = createServer((_request, response) => { response.statusCode = 503; response.end() })
  let webhookUrl = ''

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/services/T0AAA/B0BBB/s3cr3tWebhookPath`
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    const sink = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
    fx = await buildFixture(opened.db, {
      logger: pino({ level: 'info' }, sink),
      settings: { escalateAfterMs: 60_000, webhookUrls: [webhookUrl], webhookSecret: 'webhook-secret' },
      webhookBackoff: { minBackoffMs: 20, maxBackoffMs: 50, retries: 1 }
    })
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
    receiver.closeAllConnections()
    await new Promise((resolve) => receiver.close(resolve))
  })

  it('writes secret query values as [redacted] and keeps the rest of the URL', async () => {
    const operator = await fx.tokenFor('operator')
    lines.length = 0
    const asked = [
      `/v1/alerts?token=${operator}&state=open`,
      `/v1/alerts?access_token=${operator}`,
      `/v1/alerts?limit=5&Token=${operator}`,
      `/v1/devices?secret=${operator}&password=${operator}&pin=4321`,
      `/v1/nowhere?token=${operator}`,
      `/v1/alerts?state=bogus&token=${operator}`,
      `/v1/alerts?token[]=${operator}&jwt=${operator}&Authorization=${operator}&session=${operator}&credentials=${operator}`,
      `/v1/alerts?token%00=${operator}`
    ]
    for (const url of asked) await fx.call('GET', url, undefined, operator)
    // An unauthenticated request that carries its token in the query only.
    await fx.call('GET', `/v1/alerts?token=${operator}`, undefined, '')
    const log = lines.join('')
    expect(lines.length, 'a line per request and its completion').toBeGreaterThanOrEqual(2 * (asked.length + 1))
    expect(log).not.toContain(operator)
    expect(log).not.toContain('4321')
    expect(log).toContain('/v1/alerts?token=[redacted]&state=open')
    expect(log).toContain('/v1/alerts?limit=5&Token=[redacted]')
    // Whoever sent it is still known: the caller's address stays in the line.
    const incoming = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'incoming request')
    expect(incoming.length).toBe(asked.length + 1)
    for (const line of incoming) expect(line.req.remoteAddress).toBe('127.0.0.1')
  })

  it('names a failing webhook receiver by its origin, not its secret path', async () => {
    await fx.provision('btn-log-1')
    // Pressed 61 s ago: escalated at the next check, and its notice sent to the receiver that is down.
    await fx.ingest({ events: [gatewayEvent('btn-log-1', { seq: 1, type: 'press' }, Date.now() - 61_000)] })
    await fx.app.services.escalator.check()
    await expect.poll(() => lines.some((l) => l.includes('webhook delivery given up')), { timeout: 15_000 }).toBe(true)
    const log = lines.join('')
    expect(log).toContain('webhook delivery failed')
    expect(log).toContain(`${new URL(webhookUrl).origin}/…`)
    expect(log).not.toContain('s3cr3tWebhookPath')
  })
})
