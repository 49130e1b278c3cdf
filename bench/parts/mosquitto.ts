/**
 * Part 4: the same paced QoS 1 load against the Mosquitto broker already running on this
 * machine (raw publish → one subscriber; no authentication, validation or durability): the
 * reference for what routing an MQTT message costs, in CPU per message.
 */
import { randomBytes } from 'node:crypto'
import { CpuMeter, pidsNamed } from '../lib/proc.js'
import { round, summarize, type Summary } from '../lib/stats.js'
import { LoadPool } from '../load/pool.js'
import type { ConnSpec } from '../load/protocol.js'

export const MOSQUITTO_PORT = Number(process.env.BENCH_MOSQUITTO_PORT || 1883)

export interface ReferenceStep {
  rate: number
  seconds: number
  sent: number
  acked: number
  delivered: number
  acceptedPerSec: number
  puback: Summary
  publishToSubscriber: Summary
  mosquittoCpuUsPerMessage: number
  loadgenCpuUsPerMessage: number
}

export async function runReference (options: { rates: Array<{ rate: number, seconds: number }>, connections: number, workers: number }): Promise<{ pid?: number, steps: ReferenceStep[] }> {
  const pid = pidsNamed('mosquitto')[0]
  if (!pid) return { steps: [] }
  const run = randomBytes(3).toString('hex')
  const publishers = LoadPool.start(options.workers)
  const subscriber = LoadPool.start(1)
  try {
    await subscriber.connect(MOSQUITTO_PORT, [{ clientId: `sosbench-${run}-sub`, topic: 'unused', subscribe: `sosbench/${run}/#` }], 1)
    const specs: ConnSpec[] = Array.from({ length: options.connections }, (_, i) => ({ clientId: `sosbench-${run}-${i}`, topic: `sosbench/${run}/${i}/event` }))
    const connected = await publishers.connect(MOSQUITTO_PORT, specs)
    if (connected.failed > 0) throw new Error(`Mosquitto refused ${connected.failed} connections: ${connected.firstError}`)
    const steps: ReferenceStep[] = []
    for (const { rate, seconds } of options.rates) {
      const cpu = new CpuMeter(() => [pid])
      const result = await publishers.run(rate, seconds * 1000, 'reference', 15_000)
      const got = await subscriber.collect(15_000, { delivered: result.acked })
      const used = cpu.used()
      const p = summarize(result.puback)
      const d = summarize(got.delivered)
      steps.push({
        rate,
        seconds,
        sent: result.sent,
        acked: result.acked,
        delivered: got.deliveredCount,
        acceptedPerSec: round(result.acked / (result.offeredMs / 1000), 0),
        puback: { count: p.count, p50: round(p.p50, 2), p99: round(p.p99, 2), max: round(p.max, 2) },
        publishToSubscriber: { count: d.count, p50: round(d.p50, 2), p99: round(d.p99, 2), max: round(d.max, 2) },
        mosquittoCpuUsPerMessage: round(used / Math.max(1, result.acked)),
        loadgenCpuUsPerMessage: round(result.cpuUs / Math.max(1, result.sent))
      })
    }
    return { pid, steps }
  } finally {
    await publishers.close()
    await subscriber.close()
  }
}
