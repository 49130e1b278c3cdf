/** Messages between the benchmark and its load-generator processes. */

export interface ConnSpec {
  clientId: string
  username?: string
  password?: string
  /** Where this connection publishes. */
  topic: string
  /** The device's `boot` value: unique per connection, so (device, boot, seq) stays unique. */
  boot?: string
  firstSeq?: number
  /** A topic to subscribe to (the device's ack topic; the reference subscriber's wildcard). */
  subscribe?: string
}

export type WorkerRequest =
  | { type: 'connect', port: number, conns: ConnSpec[], concurrency?: number }
  | { type: 'run', rate: number, durationMs: number, payload: 'event' | 'reference', drainMs?: number, pressEvery?: number }
  | { type: 'collect', waitMs?: number, expectDelivered?: number, expectReceived?: number }
  | { type: 'close' }

export interface RunResult {
  sent: number
  acked: number
  failed: number
  unacked: number
  offeredMs: number
  /** The most the generator fell behind its schedule, ms. */
  worstLagMs: number
  cpuUs: number
  /** PUBACK latencies, ms. */
  puback: number[]
  /** publish → `received` on the ack topic, ms. */
  received: number[]
  /** The same, for presses only. */
  receivedPress: number[]
}

export type WorkerReply =
  | { type: 'connected', ms: number, failed: number, open: number, firstError?: string }
  | { type: 'ran', result: RunResult }
  | { type: 'collected', delivered: number[], deliveredCount: number, received: number[], receivedPress: number[] }
  | { type: 'closed' }
  | { type: 'error', message: string }
