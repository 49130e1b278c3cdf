/**
 * Part 3: idle device connections (authenticated, keepalive 60 s) held by one gateway process:
 * at each level, memory per connection (RSS growth over the baseline) and the connect rate.
 * Connections use `{deviceId}:{n}` client ids of provisioned devices, so each one goes through
 * the real authentication (the secret is checked against its hash, the device looked up once).
 */
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { rssBytes } from '../lib/proc.js'
import { round } from '../lib/stats.js'
import type { DeviceCredentials } from '../lib/fleet.js'
import type { LoadPool } from '../load/pool.js'
import type { ConnSpec } from '../load/protocol.js'

export interface ConnectionLevel {
  target: number
  label: string
  held: number
  failed: number
  firstError?: string
  connectPerSec: number
  /** After a full garbage collection (see below). */
  rssMB: number
  bytesPerConnection: number
  /** As found, with whatever garbage the connects left: V8 collects it on its own schedule. */
  bytesPerConnectionBeforeGc: number
}

/** Local ports one source address can use towards one listener, minus a margin for the rest of the run. */
export function ephemeralPorts (): number {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
  return high! - low! + 1
}

export async function runConnectionLevels (options: {
  pool: LoadPool
  gatewayPid: number
  mqttPort: number
  devices: DeviceCredentials[]
  levels: Array<{ target: number, label: string }>
  /** The gateway's inspector: with it, memory is read after a full GC, i.e. what is retained. */
  inspectorUrl?: string
  holdMs?: number
}): Promise<{ baselineRssMB: number, afterGc: boolean, levels: ConnectionLevel[] }> {
  const { pool, devices, mqttPort } = options
  // One connection per device first: the credential lookup each device costs once, kept out of the rate.
  const warm: ConnSpec[] = devices.map((d) => ({ clientId: `${d.id}:w`, username: d.id, password: d.secret, topic: 'unused' }))
  await pool.connect(mqttPort, warm, 8)
  await settle()
  const collect = async () => { if (options.inspectorUrl) await fullGc(options.inspectorUrl) }
  await collect()
  const baseline = rssBytes(options.gatewayPid)
  const results: ConnectionLevel[] = []
  let open = 0
  let next = 0
  for (const level of options.levels) {
    const want = level.target - open
    if (want <= 0) continue
    const specs: ConnSpec[] = Array.from({ length: want }, () => {
      const d = devices[next % devices.length]!
      const spec = { clientId: `${d.id}:i${next}`, username: d.id, password: d.secret, topic: 'unused' }
      next++
      return spec
    })
    const step = await pool.connect(mqttPort, specs, 64)
    await settle(options.holdMs)
    open += want - step.failed
    const found = rssBytes(options.gatewayPid)
    await collect()
    const rss = rssBytes(options.gatewayPid)
    results.push({
      target: level.target,
      label: level.label,
      held: open,
      failed: step.failed,
      ...(step.firstError ? { firstError: step.firstError } : {}),
      connectPerSec: round((want - step.failed) / (step.ms / 1000), 0),
      rssMB: round(rss / 2 ** 20),
      bytesPerConnection: round((rss - baseline) / Math.max(1, open), 0),
      bytesPerConnectionBeforeGc: round((found - baseline) / Math.max(1, open), 0)
    })
    if (step.failed > 0) break
  }
  return { baselineRssMB: round(baseline / 2 ** 20), afterGc: options.inspectorUrl !== undefined, levels: results }
}

/** Asks the process, through its inspector, for a full garbage collection, and waits for it. */
async function fullGc (inspectorUrl: string): Promise<void> {
  const socket = new WebSocket(inspectorUrl)
  await new Promise<void>((resolve, reject) => { socket.once('open', () => resolve()); socket.once('error', reject) })
  await new Promise<void>((resolve) => {
    socket.on('message', (data) => { if ((JSON.parse(String(data)) as { id?: number }).id === 1) resolve() })
    socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }))
  })
  socket.close()
  // The freed pages go back to the system a moment later.
  await settle(500)
}

/** Lets the gateway finish its work and the heap settle before reading RSS. */
function settle (ms = 3000): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
