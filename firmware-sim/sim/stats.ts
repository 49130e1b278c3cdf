/** The simulator's counters and latencies, and the one-line live summary. */
import type { Ack } from '../../protocol/index.js'

export class SimStats {
  connected = 0
  everConnected = new Set<string>()
  sent = 0
  acked = 0
  dropped = 0
  /** CONNACK 3 answers: the gateway could not reach the server to check a device; retried. */
  unavailable = 0
  readonly acks = new Map<Ack['state'], number>()
  readonly refusals = new Map<string, number>()
  readonly tickets: string[] = []
  private readonly pubackMs: number[] = []
  private readonly receivedMs: number[] = []

  constructor (readonly fleetSize: number) {}

  get refused (): number {
    let total = 0
    for (const n of this.refusals.values()) total += n
    return total
  }

  refuse (reason: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1)
  }

  puback (ms: number): void {
    this.acked++
    sample(this.pubackMs, ms)
  }

  ack (ack: Ack, ms: number | undefined): void {
    this.acks.set(ack.state, (this.acks.get(ack.state) ?? 0) + 1)
    if (ms !== undefined) sample(this.receivedMs, ms)
    if (ack.ticketId) this.tickets.push(ack.ticketId)
  }

  line (elapsedSeconds: number, queued: number): string {
    const p = percentiles(this.pubackMs)
    const r = percentiles(this.receivedMs)
    return [
      `t=${elapsedSeconds.toFixed(0)}s`,
      `connected ${this.connected}/${this.fleetSize}`,
      `sent ${this.sent}`,
      `acked ${this.acked}`,
      `received ${this.acks.get('received') ?? 0}`,
      `queued ${queued}`,
      `refused ${this.refused}`,
      ...(this.unavailable > 0 ? [`retried ${this.unavailable}`] : []),
      `dropped ${this.dropped}`,
      `puback p50 ${p.p50}ms p99 ${p.p99}ms`,
      `received p50 ${r.p50}ms p99 ${r.p99}ms`
    ].join(' · ')
  }

  toJSON () {
    return {
      devices: this.fleetSize,
      everConnected: this.everConnected.size,
      connected: this.connected,
      sent: this.sent,
      acked: this.acked,
      dropped: this.dropped,
      refused: this.refused,
      unavailable: this.unavailable,
      refusals: Object.fromEntries(this.refusals),
      acks: Object.fromEntries(this.acks),
      tickets: this.tickets,
      pubackMs: percentiles(this.pubackMs),
      receivedMs: percentiles(this.receivedMs)
    }
  }
}

/** Keeps at most this many latency samples (the newest replace random old ones). */
const MAX_SAMPLES = 100_000

function sample (into: number[], ms: number): void {
  if (into.length < MAX_SAMPLES) into.push(ms)
  else into[Math.floor(Math.random() * MAX_SAMPLES)] = ms
}

/** Nearest-rank percentiles, whole milliseconds; '-' before the first sample. */
export function percentiles (values: number[]): { p50: number | '-', p99: number | '-' } {
  if (values.length === 0) return { p50: '-', p99: '-' }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!)
  return { p50: at(0.5), p99: at(0.99) }
}
