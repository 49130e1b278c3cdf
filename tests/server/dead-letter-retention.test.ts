/**
 * Dead letters are deleted once older than DEAD_LETTER_RETENTION_DAYS, in batches, by a job of
 * the server process: they were kept forever, and one device spraying garbage wrote thousands a
 * second. Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import type { Database, Queryable } from '../../server/db/database.js'
import { migrate } from '../../server/db/migrate.js'
import { DeadLetterRetention } from '../../server/db/dead-letter-retention.js'
import { ConfigError, serverConfigFromEnv } from '../../server/config.js'

describe('DEAD_LETTER_RETENTION_DAYS', () => {
  it('is 30 days unless set; 0 keeps dead letters forever; anything but a whole number of days stops the start', () => {
    expect(serverConfigFromEnv({}).deadLetterRetentionDays).toBe(30)
    expect(serverConfigFromEnv({ DEAD_LETTER_RETENTION_DAYS: '7' }).deadLetterRetentionDays).toBe(7)
    expect(serverConfigFromEnv({ DEAD_LETTER_RETENTION_DAYS: '0' }).deadLetterRetentionDays).toBe(0)
    for (const bad of ['-1', '1.5', 'week']) expect(() => serverConfigFromEnv({ DEAD_LETTER_RETENTION_DAYS: bad })).toThrow(ConfigError)
  })
})

describe.each(databaseBackends.filter((b) => !b.timescale))('dead letter retention on $name', (backend) => {
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    db = opened.db
    dispose = opened.dispose
    await migrate(db)
  }, 180_000)

  afterAll(async () => {
    await dispose?.()
  })

  /** `count` dead letters of `deviceId`, stored `daysAgo` days ago (received whenever their gateway said). */
  const letters = async (deviceId: string, count: number, daysAgo: number) => {
    await db.query(`INSERT INTO dead_letters (gateway_id, device_id, topic, reason, payload, received_at, stored_at)
      SELECT 'gw-1', $1, 'sos/v1/' || $1 || '/event', 'not JSON', 'garbage-' || n, now(), now() - make_interval(days => $3)
      FROM generate_series(1, $2) AS n`, [deviceId, count, daysAgo])
  }
  const countOf = async (deviceId: string) => Number((await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM dead_letters WHERE device_id = $1', [deviceId]))[0]!.n)

  it('deletes those stored longer ago than the retention, a batch per statement, and keeps the rest', async () => {
    await letters('spray-old', 2500, 31)
    await letters('spray-new', 40, 29)
    // An old one its gateway dated in the future (a wrong clock) goes too: its age is the server's.
    await db.query(`INSERT INTO dead_letters (gateway_id, device_id, topic, reason, payload, received_at, stored_at)
      VALUES ('gw-1', 'spray-old', 't', 'r', 'p', '2099-01-01', now() - INTERVAL '40 days')`)
    const deletes: number[] = []
    const counting: Queryable = {
      query: async <Row>(sql: string, params?: unknown[]) => {
        const rows = await db.query<Row>(sql, params)
        if (/DELETE FROM dead_letters/.test(sql)) deletes.push(Number((rows[0] as { n: number }).n))
        return rows
      }
    }
    const deleted = await new DeadLetterRetention(counting, { keepDays: 30, batchRows: 1000 }).prune()
    expect(deleted).toBe(2501)
    expect(deletes).toEqual([1000, 1000, 501])
    expect(await countOf('spray-old')).toBe(0)
    expect(await countOf('spray-new')).toBe(40)
  })

  it('runs by itself, now and then, until stopped; never with a retention of 0', async () => {
    await letters('periodic', 10, 8)
    const keepForever = new DeadLetterRetention(db, { keepDays: 0, firstAfterMs: 0, everyMs: 20 })
    keepForever.start()
    await new Promise((resolve) => setTimeout(resolve, 200))
    await keepForever.stop()
    expect(await countOf('periodic')).toBe(10)

    const job = new DeadLetterRetention(db, { keepDays: 7, firstAfterMs: 0, everyMs: 50 })
    job.start()
    try {
      await expect.poll(() => countOf('periodic'), { timeout: 10_000 }).toBe(0)
      // Later letters, once old enough, go at a later pass.
      await letters('periodic', 5, 9)
      await expect.poll(() => countOf('periodic'), { timeout: 10_000 }).toBe(0)
    } finally {
      await job.stop()
    }
    await letters('periodic', 3, 9)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await countOf('periodic'), 'stopped: no more passes').toBe(3)
  })
})
