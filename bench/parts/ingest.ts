/**
 * Parts 1 and 2: paced QoS 1 load from simulated devices through the gateway (durable outbox,
 * forwarder) into the server on PostgreSQL. Per offered rate: events/s accepted, PUBACK
 * latency, gateway CPU per event; events/s stored, press→stored and press→`received` latency,
 * and the no-loss check (every PUBACKed event stored, exactly once).
 */
import type pg from 'pg'
import { topics } from '../../protocol/index.js'
import { ContentionMeter, CpuMeter, pidsNamed, type Contention } from '../lib/proc.js'
import { round, summarize, type Summary } from '../lib/stats.js'
import type { DeviceCredentials } from '../lib/fleet.js'
import type { LoadPool } from '../load/pool.js'
import type { ConnSpec } from '../load/protocol.js'

export interface IngestStep {
  rate: number
  burst: boolean
  seconds: number
  sent: number
  acked: number
  /** PUBACKed events/s over the offered window. */
  acceptedPerSec: number
  puback: Summary
  gatewayCpuUsPerEvent: number
  serverCpuUsPerEvent: number
  postgresCpuUsPerEvent: number
  loadgenCpuUsPerEvent: number
  loadgenWorstLagMs: number
  stored: number
  storedPerSec: number
  lost: number
  duplicated: number
  /** Every event (1 in `pressEvery` is a press, the rest `test`): publish → stored, → `received`. */
  eventToStored: Summary
  eventToReceived: Summary
  /** Presses alone (`count` of them): they travel the alarm lane, ahead of routine traffic. */
  pressToStored: Summary
  pressToReceived: Summary
  /** How much the processes waited for a core during the step (all of them share the machine). */
  contention: Contention
}

export function deviceConnections (devices: DeviceCredentials[], runId: string): ConnSpec[] {
  return devices.map((d) => ({
    clientId: d.id, username: d.id, password: d.secret, topic: topics.event(d.id), boot: `b${runId}`, subscribe: topics.ack(d.id)
  }))
}

export async function runIngestStep (options: {
  pool: LoadPool
  db: pg.Pool
  gatewayPid: number
  serverPid: number
  rate: number
  seconds: number
  burst: boolean
  /** One event in this many is a press (0: none). */
  pressEvery: number
}): Promise<IngestStep> {
  const { pool, db, rate, seconds } = options
  const gateway = new CpuMeter(() => [options.gatewayPid])
  const server = new CpuMeter(() => [options.serverPid])
  const postgres = new CpuMeter(() => pidsNamed('postgres'))
  const contention = new ContentionMeter({
    gateway: options.gatewayPid, server: options.serverPid, ...Object.fromEntries(pool.pids.map((pid, i) => [`loadgen ${i + 1}`, pid]))
  })
  const countBefore = await count(db)
  const windowStart = Date.now()

  const run = await pool.run(rate, seconds * 1000, 'event', 15_000, options.pressEvery)
  const stored = await waitForStored(db, countBefore + run.acked, 60_000)
  // CPU is charged up to the moment everything is stored: accepting, forwarding and acking.
  const gatewayUs = gateway.used()
  const serverUs = server.used()
  const postgresUs = postgres.used()
  const contended = contention.read()
  const late = await pool.collect(30_000, { received: run.acked })

  // One scan for every event and, filtered, for the presses alone.
  const { rows: [latency] } = await db.query(`
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           max(ms) AS max, count(*)::int AS n, count(DISTINCT event_id)::int AS distinct_ids,
           extract(epoch FROM max(stored_at)) * 1000 AS last_stored_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE press) AS press_p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE press) AS press_p99,
           max(ms) FILTER (WHERE press) AS press_max, count(*) FILTER (WHERE press)::int AS presses
    FROM (SELECT event_id, stored_at, type = 'press' AS press, extract(epoch FROM stored_at - device_ts) * 1000 AS ms
          FROM events WHERE device_ts >= to_timestamp($1 / 1000.0)) s`, [windowStart])
  const n = Number(latency.n)
  const acked = Math.max(1, run.acked)
  const storedNow = stored - countBefore
  return {
    rate,
    burst: options.burst,
    seconds,
    sent: run.sent,
    acked: run.acked,
    acceptedPerSec: round(run.acked / (run.offeredMs / 1000), 0),
    puback: rounded(summarize(run.puback)),
    gatewayCpuUsPerEvent: round(gatewayUs / acked),
    serverCpuUsPerEvent: round(serverUs / acked),
    postgresCpuUsPerEvent: round(postgresUs / acked),
    loadgenCpuUsPerEvent: round(run.cpuUs / Math.max(1, run.sent)),
    loadgenWorstLagMs: round(run.worstLagMs),
    stored: storedNow,
    // From the first publish to the last row stored, as the database timed it (the moment the
    // poll above saw it came up to 50 ms and a count later, which read as a slower store).
    storedPerSec: round(n / Math.max(0.001, (Number(latency.last_stored_ms) - windowStart) / 1000), 0),
    lost: Math.max(0, run.acked - Number(latency.distinct_ids)),
    duplicated: n - Number(latency.distinct_ids),
    eventToStored: { count: n, p50: round(Number(latency.p50)), p99: round(Number(latency.p99)), max: round(Number(latency.max)) },
    eventToReceived: rounded(summarize([...run.received, ...late.received])),
    pressToStored: { count: Number(latency.presses), p50: round(Number(latency.press_p50)), p99: round(Number(latency.press_p99)), max: round(Number(latency.press_max)) },
    pressToReceived: rounded(summarize([...run.receivedPress, ...late.receivedPress])),
    contention: contended
  }
}

/**
 * A few seconds at the first rate, not measured, and drained before the first step: V8 compiles
 * the hot paths and the caches (prepared statements, PostgreSQL's buffers) fill, so the first
 * step measures the steady state, as the later steps do.
 */
export async function warmUp (options: { pool: LoadPool, db: pg.Pool, rate: number, seconds: number, pressEvery: number }): Promise<void> {
  const { pool, db } = options
  const before = await count(db)
  const run = await pool.run(options.rate, options.seconds * 1000, 'event', 15_000, options.pressEvery)
  await waitForStored(db, before + run.acked, 60_000)
  // Its `received` acks must not count in the first step.
  await pool.collect(5000, { received: run.acked })
}

async function count (db: pg.Pool): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM events')
  return rows[0].n
}

async function waitForStored (db: pg.Pool, target: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let n = await count(db)
  while (n < target && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    n = await count(db)
  }
  return n
}

function rounded (s: Summary): Summary {
  return { count: s.count, p50: round(s.p50, 2), p99: round(s.p99, 2), max: round(s.max, 2) }
}

/** Bench-only instrumentation of the scratch database: when each row was written. */
export async function addStoredAtColumn (db: pg.Pool): Promise<void> {
  await db.query('ALTER TABLE events ADD COLUMN IF NOT EXISTS stored_at timestamptz NOT NULL DEFAULT clock_timestamp()')
}
