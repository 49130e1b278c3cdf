/**
 * The LISTEN connection (the bus between server instances) proves it still answers with a ping
 * every 10 s. A ping sent while the last one still waits queued behind it on the connection:
 * pg 8 warns of that ("client.query() when the client is already executing a query"), pg 9
 * refuses it, and the refusal would be taken for a dropped connection (every stream client told
 * to reload). Here the pings' timer runs ahead of the database: three are due at once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import pg from 'pg'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { openPostgres } from '../../server/db/postgres.js'
import type { Database } from '../../server/db/database.js'

describe.skipIf(!testDatabaseUrl)('the bus listener\'s pings (needs TEST_DATABASE_URL)', () => {
  let url: string
  let drop: () => Promise<void>
  let db: Database

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase())
    db = await openPostgres(url)
  }, 180_000)

  afterAll(async () => {
    vi.useRealTimers()
    vi.restoreAllMocks()
    await db?.close()
    await drop?.()
  })

  it('sends one at a time, however many fall due while one waits', async () => {
    const pings: Array<Promise<unknown>> = []
    const query = pg.Client.prototype.query
    vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, ...args: unknown[]) {
      const result = (query as (...a: unknown[]) => unknown).apply(this, args)
      if (args[0] === 'SELECT 1' && (this as unknown as { connectionParameters: { application_name?: string } }).connectionParameters.application_name === 'sos-bus-listener') {
        pings.push(Promise.resolve(result).catch(() => {}))
      }
      return result
    } as typeof query)
    vi.useFakeTimers({ toFake: ['setInterval'] })
    const troubles: Error[] = []
    const listener = await db.listen!('sos_ping_test', () => {}, () => {}, (err) => troubles.push(err))
    try {
      vi.advanceTimersByTime(30_000)
      expect(pings).toHaveLength(1)
      await pings[0]
      await new Promise((resolve) => setImmediate(resolve))
      vi.advanceTimersByTime(10_000)
      expect(pings).toHaveLength(2)
      await pings[1]
      expect(troubles).toEqual([])
    } finally {
      vi.useRealTimers()
      await listener.close()
    }
  })
})
