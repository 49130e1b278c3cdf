/**
 * One load-generator process (forked by bench/load/pool.ts, driven over IPC). It holds its
 * share of the simulated devices as raw MQTT connections and publishes at a paced rate —
 * never "as fast as possible" — recording PUBACK and downlink latencies. Several of these run
 * side by side so the generator is never the bottleneck; each reports its own CPU.
 */
import { performance } from 'node:perf_hooks'
import { RawClient } from '../lib/raw-mqtt.js'
import type { ConnSpec, RunResult, WorkerRequest, WorkerReply } from './protocol.js'

/** Wall-clock ms with sub-ms precision, comparable across processes on this machine. */
const wallMs = () => performance.timeOrigin + performance.now()

interface Conn {
  spec: ConnSpec
  client: RawClient
  seq: number
  /** seq → publish time, for `received` acks on the device's ack topic. */
  sentAt: Map<number, number>
  /** The seqs that were presses. */
  presses: Set<number>
}

const conns: Conn[] = []
let receivedLatencies: number[] = []
let receivedPressLatencies: number[] = []
let delivered: number[] = []
let deliveredCount = 0

function reply (message: WorkerReply): void {
  process.send!(message)
}

async function connectAll (port: number, specs: ConnSpec[], concurrency: number): Promise<{ ms: number, failed: number, firstError?: string }> {
  const started = performance.now()
  let next = 0
  let failed = 0
  let firstError: string | undefined
  const worker = async () => {
    while (next < specs.length) {
      const spec = specs[next++]!
      try {
        const client = await RawClient.connect({ port, clientId: spec.clientId, username: spec.username, password: spec.password, keepalive: 60 })
        const conn: Conn = { spec, client, seq: spec.firstSeq ?? 1, sentAt: new Map(), presses: new Set() }
        if (spec.subscribe) {
          client.onMessage = (topic, payload) => onMessage(conn, topic, payload)
          await client.subscribe(spec.subscribe, 1)
        }
        conns.push(conn)
      } catch (err) {
        failed++
        firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { ms: performance.now() - started, failed, firstError }
}

function onMessage (conn: Conn, _topic: string, payload: Buffer): void {
  const now = wallMs()
  let body: { seq?: number, state?: string, t?: number }
  try { body = JSON.parse(payload.toString()) } catch { return }
  if (typeof body.t === 'number') {
    // A reference-broker message carrying its publish time.
    deliveredCount++
    delivered.push(now - body.t)
    return
  }
  if (body.state !== 'received' || typeof body.seq !== 'number') return
  const sent = conn.sentAt.get(body.seq)
  if (sent === undefined) return
  conn.sentAt.delete(body.seq)
  receivedLatencies.push(now - sent)
  if (conn.presses.delete(body.seq)) receivedPressLatencies.push(now - sent)
}

async function run (rate: number, durationMs: number, payloadKind: 'event' | 'reference', drainMs: number, pressEvery = 0): Promise<RunResult> {
  const live = conns.filter((c) => !c.client.closed)
  if (live.length === 0) throw new Error('no load connection is open: the broker closed them all')
  const cpuBefore = process.cpuUsage()
  receivedLatencies = []
  receivedPressLatencies = []
  const puback: number[] = []
  let sent = 0
  let acked = 0
  let failed = 0
  let worstLagMs = 0
  let turn = 0
  const start = performance.now()
  const total = Math.round(rate * durationMs / 1000)

  const publishOne = () => {
    const conn = live[turn++ % live.length]!
    const t0 = wallMs()
    let payload: string
    if (payloadKind === 'event') {
      const seq = conn.seq++
      conn.sentAt.set(seq, t0)
      // Now and then a press among the routine events: what must never wait behind them.
      const press = pressEvery > 0 && sent % pressEvery === pressEvery - 1
      if (press) conn.presses.add(seq)
      payload = JSON.stringify({ seq, boot: conn.spec.boot, type: press ? 'press' : 'test', ts: Math.floor(t0) })
    } else {
      payload = JSON.stringify({ seq: conn.seq++, type: 'test', t: t0 })
    }
    sent++
    conn.client.publish(conn.spec.topic, payload, (err) => {
      if (err) { failed++; return }
      acked++
      puback.push(wallMs() - t0)
    })
  }

  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start
      const due = Math.min(total, Math.floor(elapsed * rate / 1000))
      // How far behind schedule we were when we got the CPU: the generator's own health.
      if (due - sent > 0) worstLagMs = Math.max(worstLagMs, (due - sent) * 1000 / rate)
      while (sent < due) publishOne()
      if (sent >= total) return resolve()
      setTimeout(tick, 1)
    }
    tick()
  })
  const offeredMs = performance.now() - start
  const drainUntil = performance.now() + drainMs
  while (acked + failed < sent && performance.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 20))
  const cpu = process.cpuUsage(cpuBefore)
  return {
    sent, acked, failed, offeredMs, worstLagMs,
    cpuUs: cpu.user + cpu.system,
    puback,
    received: receivedLatencies,
    receivedPress: receivedPressLatencies,
    unacked: sent - acked - failed
  }
}

process.on('message', async (request: WorkerRequest) => {
  try {
    switch (request.type) {
      case 'connect': {
        const result = await connectAll(request.port, request.conns, request.concurrency ?? 64)
        return reply({ type: 'connected', ...result, open: conns.filter((c) => !c.client.closed).length })
      }
      case 'run':
        return reply({ type: 'ran', result: await run(request.rate, request.durationMs, request.payload, request.drainMs ?? 10_000, request.pressEvery) })
      case 'collect': {
        // Waits (bounded) for late `received` acks or reference deliveries, then hands them over.
        const until = performance.now() + (request.waitMs ?? 0)
        const done = () => deliveredCount >= (request.expectDelivered ?? 0) && receivedLatencies.length >= (request.expectReceived ?? 0)
        while (performance.now() < until && !done()) await new Promise((resolve) => setTimeout(resolve, 20))
        const out = { type: 'collected' as const, delivered, deliveredCount, received: receivedLatencies, receivedPress: receivedPressLatencies }
        delivered = []
        deliveredCount = 0
        receivedLatencies = []
        receivedPressLatencies = []
        return reply(out)
      }
      case 'close':
        for (const c of conns) c.client.destroy()
        conns.length = 0
        reply({ type: 'closed' })
        return setTimeout(() => process.exit(0), 10)
    }
  } catch (err) {
    reply({ type: 'error', message: (err as Error).stack ?? String(err) })
  }
})
