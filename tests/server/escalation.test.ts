/**
 * Escalation with a fake clock: an open panic alert nobody acknowledges escalates after
 * ESCALATE_AFTER and again each further interval, shows on the live stream, and a real HTTP
 * receiver gets the webhook with a body it can verify (HMAC-SHA256), after a retry.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import { openStream } from './stream-client.js'

const SECRET = 'webhook-secret-for-tests'

interface Received { signature: string, event: string, body: string, valid: boolean }

/** A webhook receiver that checks signatures as a real one would; fails its first request (503). */
async function startReceiver (): Promise<{ server: Server, url: string, received: Received[] }> {
  const received: Received[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (c: Buffer) => chunks.push(c))
    request.on('end', () => {
      const body = Buffer.concat(chunks)
      const signature = String(request.headers['x-sos-signature'] ?? '')
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`)
      const valid = signature.length === expected.length && timingSafeEqual(Buffer.from(signature), expected)
      received.push({ signature, event: String(request.headers['x-sos-event']), body: body.toString('utf8'), valid })
      response.statusCode = received.length === 1 ? 503 : valid ? 204 : 401
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/sos`, received }
}

describe('escalation of unacknowledged panic alerts', () => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let receiver: Awaited<ReturnType<typeof startReceiver>>

  beforeAll(async () => {
    receiver = await startReceiver()
    // Only the escalator's interval and the clock are fake; sockets and retries use real time.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db, {
      settings: { escalateAfterMs: 60_000, webhookUrls: [receiver.url], webhookSecret: SECRET },
      webhookBackoff: { minBackoffMs: 10, maxBackoffMs: 50 }
    })
    await fx.provision('btn-esc')
    await fx.app.listen({ port: 0, host: '127.0.0.1' })
  }, 180_000)

  afterAll(async () => {
    vi.useRealTimers()
    await fx?.app.close()
    await dispose?.()
    receiver?.server.close()
  })

  it('escalates after the interval and again each interval, on the stream and by signed webhook, until acknowledged', async () => {
    const { escalator, webhooks } = fx.app.services
    const stream = await openStream(fx)
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-esc', { seq: 1, type: 'press' }, Date.now())] })
    const alertId = press!.alertId!

    await vi.advanceTimersByTimeAsync(59_000)
    await escalator.check()
    expect((await fx.call('GET', `/v1/alerts/${alertId}`)).body.escalationLevel).toBe(0)

    await vi.advanceTimersByTimeAsync(1_000)
    await escalator.check()
    const escalated = (await fx.call('GET', `/v1/alerts/${alertId}`)).body
    expect(escalated).toMatchObject({ state: 'open', escalationLevel: 1 })
    expect(escalated.transitions.at(-1)).toMatchObject({ from: 'open', to: 'open', actor: 'system:escalation' })
    expect(escalated.transitions.at(-1).note).toMatch(/escalated to level 1: not acknowledged after 60 s/)

    await stream.waitFor(`"alertId":"${alertId}","deviceId":"btn-esc","state":"open","kind":"panic","escalationLevel":1`)

    await delivered(webhooks)
    // The first delivery failed (503) and was retried: the same notice (id), each attempt signed
    // with its own sentAt.
    expect(receiver.received).toHaveLength(2)
    expect(receiver.received.every((r) => r.valid && r.event === 'alert.escalated')).toBe(true)
    const [first, second] = receiver.received.map((r) => JSON.parse(r.body))
    expect(second.id).toBe(first.id)
    expect(Date.parse(second.sentAt)).toBeGreaterThanOrEqual(Date.parse(first.sentAt))
    expect(second.queuedAt).toBe(first.queuedAt)
    const payload = JSON.parse(receiver.received[1]!.body)
    expect(payload).toMatchObject({ type: 'alert.escalated', data: { alertId, deviceId: 'btn-esc', zone: 'zone-a', escalationLevel: 1 } })

    await vi.advanceTimersByTimeAsync(60_000)
    await escalator.check()
    await delivered(webhooks)
    expect((await fx.call('GET', `/v1/alerts/${alertId}`)).body.escalationLevel).toBe(2)
    expect(JSON.parse(receiver.received.at(-1)!.body).data.escalationLevel).toBe(2)

    // Acknowledged: no further escalation.
    expect((await fx.call('POST', `/v1/alerts/${alertId}/acknowledge`)).status).toBe(200)
    const before = receiver.received.length
    await vi.advanceTimersByTimeAsync(180_000)
    await escalator.check()
    await delivered(webhooks)
    expect((await fx.call('GET', `/v1/alerts/${alertId}`)).body.escalationLevel).toBe(2)
    expect(receiver.received).toHaveLength(before)
    await stream.close()
  })

  it('escalates on time a press through a gateway whose clock runs minutes fast', async () => {
    await fx.provision('btn-esc-fast')
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-esc-fast', { seq: 1, type: 'press' }, Date.now() + 3 * 60_000)] })
    const alertId = press!.alertId!
    expect(Date.parse((await fx.call('GET', `/v1/alerts/${alertId}`)).body.openedAt)).toBeLessThanOrEqual(Date.now())
    await vi.advanceTimersByTimeAsync(60_000)
    await fx.app.services.escalator.check()
    expect((await fx.call('GET', `/v1/alerts/${alertId}`)).body.escalationLevel, 'escalation held back by the gateway\'s clock').toBe(1)
  })
})

/**
 * Waits until the webhooks are delivered. PGlite's clock is the (fake) Date, so a retry's
 * backoff, due at the database's now() + 10 ms, only comes due as the fake clock moves on.
 */
async function delivered (webhooks: { waiting (): Promise<number> }): Promise<void> {
  while (await webhooks.waiting() > 0) {
    await vi.advanceTimersByTimeAsync(10)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
