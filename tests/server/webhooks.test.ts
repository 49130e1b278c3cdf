/**
 * Webhook deliveries kept in the database, against real HTTP receivers: an escalation's notice
 * survives a server restart while its receiver is down, a refusing receiver is given up without
 * holding the others, and two server instances on one database send each delivery once.
 */
import { createHmac } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import type { Database } from '../../server/db/database.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

const SECRET = 'webhook-secret-for-tests'
const BACKOFF = { minBackoffMs: 20, maxBackoffMs: 50 }

interface Receiver { url: string, bodies: string[], status: number, delayMs: number, close: () => Promise<void> }

/** Answers `status` (changeable), after `delayMs`; keeps the bodies whose signature holds. */
async function startReceiver (status = 204): Promise<Receiver> {
  const receiver: Receiver = { url: '', bodies: [], status, delayMs: 0, close: async () => {} }
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (c: Buffer) => chunks.push(c))
    request.on('end', () => {
      const body = Buffer.concat(chunks)
      const valid = request.headers['x-sos-signature'] === `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`
      if (valid) receiver.bodies.push(body.toString('utf8'))
      setTimeout(() => { response.statusCode = valid ? receiver.status : 401; response.end() }, receiver.delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`
  receiver.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  return receiver
}

const idsOf = (bodies: string[]) => bodies.map((b) => JSON.parse(b).id as string)

for (const backend of databaseBackends.filter((b) => !b.timescale)) {
  describe(`webhook deliveries (${backend.name})`, () => {
    let db: Database
    let dispose: () => Promise<void>
    const receivers: Receiver[] = []
    const fixtures: Fixture[] = []

    beforeAll(async () => {
      ({ db, dispose } = await backend.open())
    }, 180_000)

    afterAll(async () => {
      for (const fx of fixtures) await fx.app.close()
      for (const r of receivers) await r.close()
      await dispose?.()
    })

    const receiver = async (status?: number) => { const r = await startReceiver(status); receivers.push(r); return r }
    const server = async (urls: string[], escalateAfterMs = 3_600_000) => {
      const fx = await buildFixture(db, { settings: { escalateAfterMs, webhookUrls: urls, webhookSecret: SECRET }, webhookBackoff: BACKOFF })
      fixtures.push(fx)
      return fx
    }

    it('delivers an escalation after a restart of the server, queued while its receiver was down', async () => {
      const duty = await receiver(503)
      const before = await server([duty.url], 60_000)
      await before.provision('btn-wh-1')
      // Pressed 61 s ago: due for level 1 now (by this check or the escalator's own), level 2 only in a minute.
      const [press] = await before.ingest({ events: [gatewayEvent('btn-wh-1', { seq: 1, type: 'press' }, Date.now() - 61_000)] })
      await expect.poll(async () => {
        await before.app.services.escalator.check()
        return (await before.call('GET', `/v1/alerts/${press!.alertId}`)).body.escalationLevel
      }).toBe(1)
      // The receiver is down: the notice is tried, and waits.
      await expect.poll(() => duty.bodies.length, { timeout: 5000 }).toBeGreaterThan(0)
      const attempted = new Set(idsOf(duty.bodies))
      await before.app.close()
      fixtures.splice(fixtures.indexOf(before), 1)

      duty.status = 204
      const tried = duty.bodies.length
      const after = await server([duty.url])
      await after.app.services.webhooks.idle()
      const delivered = duty.bodies.slice(tried).map((b) => JSON.parse(b))
      expect(delivered).toHaveLength(1)
      // The same notice (its id unchanged, for the receiver to drop repeats), not a new one.
      expect(attempted.has(delivered[0].id)).toBe(true)
      expect(delivered[0]).toMatchObject({ type: 'alert.escalated', data: { alertId: press!.alertId, escalationLevel: 1 } })
      await after.app.close()
      fixtures.splice(fixtures.indexOf(after), 1)
    })

    it('gives up on a receiver that refuses (4xx) after one attempt, and delivers to the others', async () => {
      const refusing = await receiver(400)
      const duty = await receiver(204)
      const fx = await server([refusing.url, duty.url])
      const { webhooks, metrics } = fx.app.services
      const failedBefore = (await metrics.webhookDeliveries.get()).values.find((v) => v.labels.result === 'failed')?.value ?? 0
      await db.transaction((tx) => webhooks.enqueue(tx, 'alert.escalated', { alertId: 'A-test' }))
      webhooks.poke()
      await webhooks.idle()
      expect(refusing.bodies).toHaveLength(1)
      expect(duty.bodies).toHaveLength(1)
      const failed = (await metrics.webhookDeliveries.get()).values.find((v) => v.labels.result === 'failed')?.value ?? 0
      expect(failed - failedBefore).toBe(1)
      const [row] = await db.query<{ attempts: number, last_error: string }>('SELECT attempts, last_error FROM webhook_deliveries WHERE url = $1', [refusing.url])
      expect(row).toMatchObject({ attempts: 1, last_error: expect.stringMatching(/HTTP 400/) })
      await fx.app.close()
      fixtures.splice(fixtures.indexOf(fx), 1)
    })

    it('does not hold one receiver\'s notices behind another that hangs', async () => {
      const hanging = await receiver(204)
      hanging.delayMs = 8000
      const duty = await receiver(204)
      const fx = await server([hanging.url, duty.url])
      const { webhooks } = fx.app.services
      await db.transaction(async (tx) => {
        for (let i = 0; i < 20; i++) await webhooks.enqueue(tx, 'alert.escalated', { n: i })
      })
      webhooks.poke()
      // Every notice reaches the receiver that answers, long before the hanging one answers any.
      await expect.poll(() => duty.bodies.length, { timeout: 5000 }).toBe(20)
      await fx.app.close()
      fixtures.splice(fixtures.indexOf(fx), 1)
    })

    it.skipIf(backend.name !== 'PostgreSQL')('sends each delivery once with two server instances on one database', async () => {
      const duty = await receiver(204)
      // Slow answers widen the window in which both instances could take the same delivery.
      duty.delayMs = 30
      const one = await server([duty.url])
      const two = await server([duty.url])
      const count = 40
      await db.transaction(async (tx) => {
        for (let i = 0; i < count; i++) await one.app.services.webhooks.enqueue(tx, 'alert.escalated', { n: i })
      })
      one.app.services.webhooks.poke()
      two.app.services.webhooks.poke()
      await Promise.all([one.app.services.webhooks.idle(), two.app.services.webhooks.idle()])
      const ids = idsOf(duty.bodies)
      expect(ids).toHaveLength(count)
      expect(new Set(ids).size).toBe(count)
    })
  })
}
