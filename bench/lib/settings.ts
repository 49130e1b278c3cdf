/**
 * What `npm run bench` does, from the environment (defaults = the full run, under 10 minutes
 * on 2 cores). Shorter runs for trying the harness: BENCH_SECONDS=3 BENCH_RATES=500,1000.
 */
function list (name: string, fallback: number[]): number[] {
  const raw = process.env[name]
  if (!raw) return fallback
  const values = raw.split(',').map((s) => Number(s.trim()))
  if (values.some((v) => !Number.isFinite(v) || v <= 0)) throw new Error(`${name} must be a comma-separated list of positive numbers, got "${raw}"`)
  return values
}

function num (name: string, fallback: number): number {
  const raw = process.env[name]
  if (!raw) return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`)
  return value
}

export interface BenchSettings {
  /** Offered loads, events/s. The last one is run as a burst (shorter). */
  rates: number[]
  sustainedSeconds: number
  burstSeconds: number
  /** Simulated devices publishing (one connection each, subscribed to their ack topic). */
  devices: number
  /** Load-generator processes. */
  workers: number
  /** Idle-connection levels; the last level, "max", is added from the open-file and port limits. */
  connectionLevels: number[]
  /** Upper bound of the "max" level (0 = only the limits decide). */
  maxConnections: number
  skipMosquitto: boolean
  /** One event in this many is a press, the rest routine `test` events (0: no presses). */
  pressEvery: number
  /** Unmeasured load at the first rate before the first step (0: none). */
  warmUpSeconds: number
  /** How long one device floods while others press (part 5; 0: not run). */
  floodSeconds: number
}

export function benchSettings (): BenchSettings {
  const seconds = num('BENCH_SECONDS', 10)
  return Object.freeze({
    rates: list('BENCH_RATES', [1000, 5000, 10000, 20000]),
    sustainedSeconds: seconds,
    burstSeconds: num('BENCH_BURST_SECONDS', Math.max(2, seconds / 2)),
    devices: num('BENCH_DEVICES', 250),
    workers: num('BENCH_WORKERS', 2),
    connectionLevels: list('BENCH_CONNECTIONS', [5000, 20000]),
    maxConnections: process.env.BENCH_MAX_CONNECTIONS === '0' ? 0 : num('BENCH_MAX_CONNECTIONS', 60000),
    skipMosquitto: process.env.BENCH_SKIP_MOSQUITTO === '1',
    pressEvery: process.env.BENCH_PRESS_EVERY === '0' ? 0 : num('BENCH_PRESS_EVERY', 100),
    warmUpSeconds: process.env.BENCH_WARMUP_SECONDS === '0' ? 0 : num('BENCH_WARMUP_SECONDS', 3),
    floodSeconds: process.env.BENCH_FLOOD_SECONDS === '0' ? 0 : num('BENCH_FLOOD_SECONDS', seconds)
  })
}
