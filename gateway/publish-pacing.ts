/**
 * Backpressure on what one connection sends, as EMQX's per-client message-rate limiter: a
 * token bucket of PUBLISH packets per connection. A device flooding publishes (garbage at full
 * speed, or valid heartbeats far past its rate limit) had every one of them run the whole
 * answer path at whatever rate its socket delivered, and other devices' presses waited behind
 * it for their PUBACK. Past its bucket, a connection's PUBLISHes are handled one per token, in
 * the order they came, and its socket is not read until they are all handled and a token is
 * due: nothing is dropped or refused, the packets wait in the device's own TCP stream (and then
 * in its sender), so every event PUBACKed is still durable first, and an alarm from that device
 * waits only behind that device's own flood.
 *
 * aedes reads a socket a chunk at a time, every packet in it handled at once: a 64 KiB read of
 * small PUBLISHes is two thousand of them. So both are needed: the packets already read wait for
 * their tokens (`admit`), and the socket waits for the next (`attach`: aedes' own `pause()`,
 * made where aedes reads, client.js nextBatch `conn.read(null)`, once what it read last has
 * been handed over, its count of packets in hand at zero; paused anywhere else, the packets
 * still in hand are not counted back when they finish, and aedes never reads the connection
 * again). aedes pauses a client itself only while it authenticates, before any PUBLISH is
 * handled: only a pause made here is resumed here, and never on a closed client.
 */
import { performance } from 'node:perf_hooks'
import { PassThrough, type Readable } from 'node:stream'
import type { Aedes, Client } from 'aedes'

export interface PacingOptions {
  /** PUBLISH packets a connection may send at once. */
  readonly burst: number
  /** Then so many a second. */
  readonly perSecond: number
}

/** The part of aedes' client, untyped, that stops and restarts reading its connection. */
interface PausableClient extends Client {
  pause (): void
  resume (): void
}

interface Bucket {
  tokens: number
  /** When `tokens` was last brought up to date. */
  at: number
  /** PUBLISHes read and waiting for their token, in the order they came. */
  waiting: Array<() => void>
  /** Reading stopped here (aedes' pause) until the waiting are handled and a token is due. */
  paused: boolean
  /** Set while the connection is held back: when the next token is due. */
  timer?: NodeJS.Timeout
  closed: boolean
}

/**
 * The pacing uses aedes' pause and resume, not in its typings: checked once when the gateway
 * starts (on a client of its own making), so an aedes upgrade that drops them stops the start.
 */
export function assertPausable (broker: Aedes): void {
  const probe = broker.handle(new PassThrough()) as Partial<PausableClient> & Client
  const pausable = typeof probe.pause === 'function' && typeof probe.resume === 'function'
  probe.close()
  if (!pausable) throw new Error('aedes clients cannot be paused: check gateway/publish-pacing.ts against this aedes version')
}

export class PublishPacing {
  private readonly buckets = new WeakMap<Client, Bucket>()

  constructor (
    private readonly options: PacingOptions,
    /** A connection went past its pace: held back until tokens are due. */
    private readonly onHeldBack: (client: Client) => void = () => {},
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Paces a connection aedes has just taken on: its socket is not read while it is held back. */
  attach (client: Client): void {
    const bucket: Bucket = { tokens: this.options.burst, at: this.now(), waiting: [], paused: false, closed: false }
    this.buckets.set(client, bucket)
    const conn = client.conn as Readable
    const read = conn.read.bind(conn)
    conn.read = (size?: number | null) => {
      // aedes reads with read(null), once what it read last is handed over; Node's own read(0)s
      // (filling the buffer up to its high-water mark, no further) come at any time, and pass.
      if (size !== null || client.closed || (bucket.waiting.length === 0 && this.refill(bucket) >= 1)) return read(size as number)
      bucket.paused = true
      ;(client as PausableClient).pause()
      this.holdBack(client as PausableClient, bucket)
      return null
    }
    // Whatever still waits goes with the connection, unanswered: the device sends it again (QoS 1)
    // once back. Handled now, a flood would only have to hang up to skip its pace.
    conn.once('close', () => {
      bucket.closed = true
      bucket.waiting = []
      clearTimeout(bucket.timer)
    })
  }

  /** Runs `handle` (one PUBLISH of the client) at once while the client is within its pace, else in turn. */
  admit (client: Client, handle: () => void): void {
    const bucket = this.buckets.get(client)
    if (bucket === undefined) return handle()
    if (bucket.closed) return
    if (bucket.waiting.length === 0 && this.refill(bucket) >= 1) {
      bucket.tokens -= 1
      return handle()
    }
    bucket.waiting.push(handle)
    this.holdBack(client as PausableClient, bucket)
  }

  private holdBack (client: PausableClient, bucket: Bucket): void {
    if (bucket.timer !== undefined || bucket.closed) return
    this.onHeldBack(client)
    this.whenTokenDue(client, bucket)
  }

  private whenTokenDue (client: PausableClient, bucket: Bucket): void {
    // A millisecond past the token's time: a timer that fires early would only wait again.
    const dueMs = Math.max(0, Math.ceil((1 - bucket.tokens) * 1000 / this.options.perSecond)) + 1
    bucket.timer = setTimeout(() => {
      bucket.timer = undefined
      if (bucket.closed || client.closed) return
      this.refill(bucket)
      while (bucket.waiting.length > 0 && bucket.tokens >= 1) {
        bucket.tokens -= 1
        bucket.waiting.shift()!()
        // A step that closed the connection (it threw into aedes) drops the rest.
        if (bucket.closed) return
      }
      if (bucket.waiting.length > 0 || (bucket.paused && bucket.tokens < 1)) return this.whenTokenDue(client, bucket)
      if (bucket.paused) {
        bucket.paused = false
        client.resume()
      }
    }, dueMs)
  }

  private refill (bucket: Bucket): number {
    const now = this.now()
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + (now - bucket.at) * this.options.perSecond / 1000)
    bucket.at = now
    return bucket.tokens
  }
}
