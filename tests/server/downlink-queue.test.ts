/**
 * The downlink long poll (GET /v1/gateway/downlink) is how a device hears "help is coming":
 * a message queued while a gateway's poll waits must reach it at once, never after the whole
 * wait, whatever the timing, and whichever server instance queued it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import type { Database } from '../../server/db/database.js'
import { DownlinkQueue } from '../../server/downlink/queue.js'
import { Bus } from '../../server/bus.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const WAIT_MS = 10_000
const ack = (seq: number) => [{ topic: 'sos/v1/btn-dl/ack', payload: { seq, state: 'acknowledged' } }]

describe.each(databaseBackends.filter((b) => !b.timescale))('downlink long poll on $name', (backend) => {
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    ({ db, dispose } = await backend.open())
    await migrate(db)
  }, 180_000)

  afterAll(async () => { await dispose?.() })

  const queue = async (on: DownlinkQueue, seq: number) => {
    await db.transaction((tx) => on.enqueue(tx, ack(seq)))
    await on.notify()
  }

  it('answers a message committed between its first look and its listening at once, not after the whole wait', async () => {
    const bus = new Bus()
    const writer = new DownlinkQueue(db, bus)
    // The poll's first (empty) answer reaches it late: a busy event loop, a slow socket. The
    // operator's acknowledgement commits and is announced meanwhile.
    let lateAnswer = true
    const slow = Object.create(db) as Database
    slow.query = async (sql: string, params?: unknown[]) => {
      const rows = await db.query(sql, params)
      if (lateAnswer && sql.includes('FROM downlink WHERE id >')) {
        lateAnswer = false
        await queue(writer, 1)
      }
      return rows as never
    }
    const started = Date.now()
    const { messages } = await new DownlinkQueue(slow, bus).read(undefined, WAIT_MS, 10, new AbortController().signal)
    expect(messages.map((m) => m.payload)).toEqual([{ seq: 1, state: 'acknowledged' }])
    // Well under the once-a-second look it also takes while it waits: the announcement woke it.
    expect(Date.now() - started, 'the poll slept through the announcement').toBeLessThan(800)
  })

  it('answers a message another server instance queued (announced only in its own process) within seconds', async () => {
    const reader = new DownlinkQueue(db, new Bus())
    const otherInstance = new DownlinkQueue(db, new Bus())
    const head = await reader.head()
    const started = Date.now()
    const polled = reader.read(head, WAIT_MS, 10, new AbortController().signal)
    await sleep(300)
    await queue(otherInstance, 2)
    const { messages } = await polled
    expect(messages.map((m) => m.payload)).toEqual([{ seq: 2, state: 'acknowledged' }])
    expect(Date.now() - started, 'the poll waited out its whole wait').toBeLessThan(WAIT_MS / 2)
  })

  it('still waits the whole wait when nothing comes, and ends at once when the gateway goes', async () => {
    const reader = new DownlinkQueue(db, new Bus())
    const head = await reader.head()
    const started = Date.now()
    expect((await reader.read(head, 1500, 10, new AbortController().signal)).messages).toEqual([])
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400)
    const gone = new AbortController()
    const polled = reader.read(head, WAIT_MS, 10, gone.signal)
    await sleep(100)
    const abortedAt = Date.now()
    gone.abort()
    expect((await polled).messages).toEqual([])
    expect(Date.now() - abortedAt).toBeLessThan(WAIT_MS / 2)
  })
  it('forgets messages older than 30 days, but for retained ones and the newest', async () => {
    const queue = new DownlinkQueue(db, new Bus())
    await db.transaction((tx) => queue.enqueue(tx, [...ack(900), { topic: 'sos/v1/announce/zone-old', payload: { id: 'a-1' }, retain: true }, ...ack(901)]))
    const head = await queue.head()
    await db.query("UPDATE downlink SET created_at = now() - interval '31 days' WHERE id > $1 - 3", [head])
    await queue.prune()
    const left = await db.query<{ topic: string, id: number }>('SELECT id, topic FROM downlink WHERE id > $1 - 3 ORDER BY id', [head])
    expect(left.map((r) => r.topic)).toEqual(['sos/v1/announce/zone-old', 'sos/v1/btn-dl/ack'])
    expect(left.at(-1)!.id).toBe(head)
    expect(await queue.head()).toBe(head)
  })
})
