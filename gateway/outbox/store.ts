/**
 * The outbox table itself: plain synchronous SQLite, used only inside the outbox's worker
 * thread (see outbox.ts for why). Its own file, `outbox.sqlite`, so no other writer of the
 * gateway's state ever waits behind an outbox commit or makes one wait.
 *
 * Bounded, with this policy when `maxEvents` is reached (the server has been away long):
 *  1. the oldest stored heartbeat is evicted to make room (a heartbeat's news is stale by then);
 *  2. with no heartbeat left, routine events (heartbeat, battery_low, power_lost, test) are shed:
 *     acknowledged and counted but not kept;
 *  3. alarm events (press, hold, cancel, tamper, report) are ALWAYS stored, past the bound if
 *     need be: only the disk limits them.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { isCopyOf, occurrenceOf, renamedEventId, REUSED_MARK, type EventOccurrence, type EventType, type GatewayEvent } from '../../protocol/index.js'

/** An accepted event as the outbox keeps it: the columns the forwarder needs, and the JSON it sends. */
export interface OutboxRecord {
  eventId: string
  deviceId: string
  type: EventType
  seq: number
  receivedAt: number
  /** The GatewayEvent as JSON, sent to the server as it is. */
  body: string
}

export interface OutboxEntry extends OutboxRecord {
  id: number
}

export type AppendResult = 'stored' | 'shed'

/**
 * Alarms (press, hold, cancel, tamper, report) and routine events (heartbeat, test, battery,
 * power) are forwarded by separate lanes, so a press never waits behind a flood of heartbeats.
 * Each lane keeps its own events in order; across lanes a device's order may change, which
 * routine events tolerate (the server orders by time).
 */
export type Lane = 'alarm' | 'routine'

/** What travels in the alarm lane and is stored whatever the bound (3. above). */
const ALARM_TYPES: ReadonlySet<EventType> = new Set(['press', 'hold', 'cancel', 'tamper', 'report'])

export function laneOf (type: EventType): Lane {
  return ALARM_TYPES.has(type) ? 'alarm' : 'routine'
}

/** What every answer of the store carries, so the main thread never has to ask. */
export interface OutboxLevel {
  count: number
  /** Receive time of the oldest waiting event, or null when empty. */
  oldestReceivedAt: number | null
}

export const OUTBOX_FILE = 'outbox.sqlite'

export class OutboxStore {
  private readonly db: Sqlite.Database
  private count: number
  private readonly appendBatch
  private readonly removeBatch
  private readonly selectOldest
  private readonly selectHead
  private readonly selectHeadSkipping
  private readonly selectAlarmsNearHead
  private readonly selectAlarmsPerDevice
  /** Event ids some waiting event is kept under a reused key of (rare; see insertReused). */
  private readonly reusedIds = new Set<string>()

  constructor (dataDir: string, private readonly maxEvents: number) {
    mkdirSync(dataDir, { recursive: true })
    this.db = new Sqlite(join(dataDir, OUTBOX_FILE))
    this.db.pragma('journal_mode = WAL')
    // FULL: the WAL is fsynced at every commit, so an acknowledged event is on disk.
    this.db.pragma('synchronous = FULL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id    TEXT NOT NULL UNIQUE,
        device_id   TEXT NOT NULL,
        type        TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        alarm       INTEGER NOT NULL,
        body        TEXT NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS outbox_heartbeats ON outbox (id) WHERE type = 'heartbeat';
      CREATE INDEX IF NOT EXISTS outbox_lanes ON outbox (alarm, id);
      -- Each device's waiting alarms, to find other devices' past one that floods (peek).
      CREATE INDEX IF NOT EXISTS outbox_alarm_devices ON outbox (device_id, id) WHERE alarm = 1;
    `)
    this.count = (this.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n
    // OR IGNORE: a QoS 1 redelivery of an event still waiting here is the same event.
    const insert = this.db.prepare('INSERT OR IGNORE INTO outbox (event_id, device_id, type, seq, alarm, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    // Unless it is not: what holds the id now, and what was kept under a reused one before.
    const holders = this.db.prepare('SELECT body FROM outbox WHERE event_id = ? OR (event_id > ? AND event_id < ?)')
    const insertRecord = (r: OutboxRecord, key: string) => insert.run(key, r.deviceId, r.type, r.seq, laneOf(r.type) === 'alarm' ? 1 : 0, r.body, r.receivedAt)
    /**
     * A record whose id an event still waiting here holds, that it cannot be a copy of: a device
     * that repeats old ids (protocol/reused-ids.ts) while the server is away. It is kept under a
     * key of its own (its body, and so the id the server sees, unchanged: the server tells the
     * two apart by the same rule); INSERT OR IGNORE alone PUBACKed such a press and dropped it.
     */
    const copyOfWaiting = (r: OutboxRecord): boolean | undefined => {
      const later = occurrence(r.body)
      const earlier = holders.all(r.eventId, r.eventId + REUSED_MARK, r.eventId + REUSED_MARK + '~') as Array<{ body: string }>
      return earlier.length === 0 ? undefined : earlier.some((row) => isCopyOf(later, occurrence(row.body)))
    }
    const insertReused = (r: OutboxRecord) => {
      if (copyOfWaiting(r) !== false) return NOT_INSERTED
      this.reusedIds.add(r.eventId)
      return insertRecord(r, renamedEventId(r.eventId, r.receivedAt))
    }
    /**
     * An id some event waits under a reused key of: a redelivery of that event, once the first
     * holder of the id is gone, must still be known as its copy, not kept (and sent) again.
     */
    const insertUnderReusedId = (r: OutboxRecord) => copyOfWaiting(r) === true ? NOT_INSERTED : insertRecord(r, r.eventId)
    for (const row of this.db.prepare(`SELECT event_id FROM outbox WHERE event_id LIKE '%${REUSED_MARK}%'`).all() as Array<{ event_id: string }>) {
      this.reusedIds.add(row.event_id.slice(0, row.event_id.indexOf(REUSED_MARK)))
    }
    const evictHeartbeat = this.db.prepare("DELETE FROM outbox WHERE id = (SELECT id FROM outbox WHERE type = 'heartbeat' ORDER BY id LIMIT 1)")
    this.appendBatch = this.db.transaction((records: OutboxRecord[]) => {
      const results: AppendResult[] = []
      const ids: number[] = []
      let evicted = 0
      let count = this.count
      for (const r of records) {
        if (count >= this.maxEvents) {
          if (evictHeartbeat.run().changes === 1) {
            count--
            evicted++
          } else if (!ALARM_TYPES.has(r.type)) {
            results.push('shed')
            ids.push(0)
            continue
          }
        }
        let { changes, lastInsertRowid } = this.reusedIds.has(r.eventId) ? insertUnderReusedId(r) : insertRecord(r, r.eventId)
        if (changes === 0) ({ changes, lastInsertRowid } = insertReused(r))
        count += changes
        results.push('stored')
        ids.push(changes === 1 ? Number(lastInsertRowid) : 0)
      }
      return { results, ids, count, evicted }
    })
    const remove = this.db.prepare('DELETE FROM outbox WHERE id = ?')
    this.removeBatch = this.db.transaction((ids: number[]) => {
      let removed = 0
      for (const id of ids) removed += remove.run(id).changes
      return removed
    })
    this.selectOldest = this.db.prepare('SELECT received_at AS at FROM outbox ORDER BY id LIMIT 1')
    this.selectHead = this.db.prepare(`SELECT id, ${eventIdOf('event_id')} AS eventId, device_id AS deviceId, type, seq, received_at AS receivedAt, body
      FROM outbox WHERE alarm = ? ORDER BY id LIMIT ?`)
    // (The routine lane is never read skipping devices but for tests: a plain filter does.)
    this.selectHeadSkipping = this.db.prepare(`SELECT id, ${eventIdOf('event_id')} AS eventId, device_id AS deviceId, type, seq, received_at AS receivedAt, body
      FROM outbox WHERE alarm = 0 AND device_id NOT IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`)
    const columns = `o.id, ${eventIdOf('o.event_id')} AS eventId, o.device_id AS deviceId, o.type, o.seq, o.received_at AS receivedAt, o.body`
    // A bounded look past the head: enough unless the devices skipped hold all of it.
    // CROSS JOIN pins the order: the bounded head first (SQLite, given statistics, would
    // rather scan the whole table).
    this.selectAlarmsNearHead = this.db.prepare(`SELECT ${columns}
      FROM (SELECT id FROM outbox WHERE alarm = 1 ORDER BY id LIMIT @window) AS head CROSS JOIN outbox o ON o.id = head.id
      WHERE o.device_id NOT IN (SELECT value FROM json_each(@skip)) ORDER BY o.id LIMIT @limit`)
    // Otherwise device by device through the index, whatever their backlog: a flood of a
    // hundred thousand presses costs a seek, not a scan. With `limit` devices or more, nothing
    // past the limit-th of their first alarms can be in the answer, which bounds the rows read.
    this.selectAlarmsPerDevice = this.db.prepare(`WITH RECURSIVE devices(id) AS (
        SELECT (SELECT device_id FROM outbox INDEXED BY outbox_alarm_devices WHERE alarm = 1 ORDER BY device_id LIMIT 1)
        UNION ALL
        SELECT (SELECT device_id FROM outbox INDEXED BY outbox_alarm_devices WHERE alarm = 1 AND device_id > devices.id ORDER BY device_id LIMIT 1)
        FROM devices WHERE devices.id IS NOT NULL),
      firsts AS MATERIALIZED (
        SELECT d.id AS device_id, (SELECT min(i.id) FROM outbox i INDEXED BY outbox_alarm_devices WHERE i.alarm = 1 AND i.device_id = d.id) AS first
        FROM devices d WHERE d.id IS NOT NULL AND d.id NOT IN (SELECT value FROM json_each(@skip))),
      bound AS MATERIALIZED (
        SELECT COALESCE((SELECT first FROM firsts ORDER BY first LIMIT 1 OFFSET @limit - 1), 9223372036854775807) AS last)
      SELECT ${columns} FROM firsts f CROSS JOIN outbox o ON o.id IN (
        SELECT i.id FROM outbox i INDEXED BY outbox_alarm_devices
        WHERE i.alarm = 1 AND i.device_id = f.device_id AND i.id <= (SELECT last FROM bound) ORDER BY i.id LIMIT @limit)
      ORDER BY o.id LIMIT @limit`)
  }

  /**
   * One transaction, one fsync, for the whole batch; a result per record, in order, and the id
   * each new entry got (0 when none: shed, or an event id already waiting here).
   */
  append (records: OutboxRecord[]): { results: AppendResult[], ids: number[], evicted: number } {
    // The counter moves only once the transaction committed.
    const { results, ids, count, evicted } = this.appendBatch(records)
    this.count = count
    return { results, ids, evicted }
  }

  /**
   * The oldest entries of a lane, in arrival order (which keeps each device's order in it),
   * leaving out the devices in `skip` (the alarm lane's devices with a request on its way).
   */
  peek (lane: Lane, limit: number, skip: string[] = []): OutboxEntry[] {
    if (skip.length === 0) return this.selectHead.all(lane === 'alarm' ? 1 : 0, limit) as OutboxEntry[]
    if (lane === 'routine') return this.selectHeadSkipping.all(JSON.stringify(skip), limit) as OutboxEntry[]
    const query = { skip: JSON.stringify(skip), limit, window: 4 * limit }
    const near = this.selectAlarmsNearHead.all(query) as OutboxEntry[]
    return near.length >= limit ? near : this.selectAlarmsPerDevice.all(query) as OutboxEntry[]
  }

  /**
   * Forgets entries the server has confirmed, without waiting for the disk: a forgetting lost
   * to a power cut only means those events are sent again, and the server stores each event
   * id once. (The WAL keeps commits in order, so the next fsynced append makes it durable.)
   * It halves the fsyncs on the hot path.
   */
  remove (ids: number[]): void {
    if (ids.length === 0) return
    this.db.pragma('synchronous = NORMAL')
    try {
      this.count -= this.removeBatch(ids)
    } finally {
      this.db.pragma('synchronous = FULL')
    }
  }

  level (): OutboxLevel {
    const oldest = this.selectOldest.get() as { at: number } | undefined
    return { count: this.count, oldestReceivedAt: oldest?.at ?? null }
  }

  close (): void {
    this.db.close()
  }
}

const NOT_INSERTED = { changes: 0, lastInsertRowid: 0 }

/**
 * The event's own id from the outbox's key, which for an event kept under a reused id
 * (`renamedEventId`) carries the receive time too: the id the server and the device know.
 */
function eventIdOf (column: string): string {
  return `CASE WHEN instr(${column}, '${REUSED_MARK}') > 0 THEN substr(${column}, 1, instr(${column}, '${REUSED_MARK}') - 1) ELSE ${column} END`
}

/** What tells apart two events under one id, read from a record's body (a GatewayEvent). */
function occurrence (body: string): EventOccurrence {
  return occurrenceOf(JSON.parse(body) as GatewayEvent)
}
