/**
 * Outbound webhooks (escalations to a duty phone gateway, a chat room, a CAD system), durable.
 * A notice is queued in the database in the transaction of what it announces (`enqueue`), and
 * sent from there by whichever server instance claims it first; a crash or restart, or a receiver
 * away for a while, delays it but does not lose it.
 *
 * The body is JSON, signed with HMAC-SHA256 over the exact bytes sent:
 *   X-SOS-Signature: sha256=<hex(hmac_sha256(WEBHOOK_SECRET, body))>
 * It carries `id` (the same on every attempt: delivery is at least once, so a receiver drops
 * repeats by it), `sentAt` (this attempt, so a receiver can refuse old replays) and `queuedAt`
 * (when the escalation happened). Failed deliveries are retried with exponential backoff, for
 * about an hour by default; a 4xx other than 408/429 is the receiver refusing, not failing, and
 * is not retried. Each receiver has its own few attempts in flight, so one that hangs never
 * holds up the others.
 */
import { createHmac, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Database, Queryable } from '../db/database.js'
import type { ServerMetrics } from '../metrics.js'
import { PassRunner } from './pass-runner.js'

export interface WebhookOptions {
  urls: readonly string[]
  secret?: string
  /** Attempts after the first (default 65: 1, 2, 4 … 32 s, then every 60 s, about an hour in all). */
  retries?: number
  minBackoffMs?: number
  maxBackoffMs?: number
  timeoutMs?: number
  /** How often to look for deliveries due again (a new one is sent at once). */
  pollMs?: number
  /**
   * A look for deliveries (a claim, and a prune every 10 minutes: small statements) not done
   * within this long is abandoned, and the next look runs (default 15 s): it waits on a dead
   * connection. What it claimed, should it finish after all, is due again when its lease runs out.
   */
  passDeadlineMs?: number
}

/** Attempts in flight per receiver, from one server instance. */
const IN_FLIGHT_PER_RECEIVER = 4
const PRUNE_EVERY_MS = 10 * 60_000

interface Notice { id: string, type: string, queuedAt: string, data: Record<string, unknown> }
interface Delivery { id: number, url: string, event_type: string, notice: string, attempts: number }

type Attempt = { result: 'delivered' } | { result: 'refused' | 'failed', error: string } | { result: 'stopped' }

export function signBody (secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

export class WebhookSender {
  private readonly stopping = new AbortController()
  /** Attempts on their way, by receiver. */
  private readonly inFlight = new Map<string, Set<Promise<void>>>()
  private running?: Promise<void>
  private wake?: () => void
  private prunedAt = 0
  private readonly passes: PassRunner<Delivery[]>

  constructor (
    private readonly db: Database,
    private readonly options: WebhookOptions,
    private readonly metrics: ServerMetrics,
    private readonly log?: FastifyBaseLogger
  ) {
    this.passes = new PassRunner({ loop: 'webhooks', deadlineMs: options.passDeadlineMs ?? 15_000, fallback: [], failedMessage: 'webhook deliveries could not be read; trying again' }, metrics, log)
  }

  get enabled (): boolean {
    return this.options.urls.length > 0 && Boolean(this.options.secret)
  }

  /** Queues `type` for every receiver, in the caller's transaction; `poke()` after its commit. */
  async enqueue (tx: Queryable, type: string, data: Record<string, unknown>): Promise<void> {
    if (!this.enabled) return
    const notice: Notice = { id: randomUUID(), type, queuedAt: new Date().toISOString(), data }
    for (const url of this.options.urls) {
      await tx.query('INSERT INTO webhook_deliveries (url, event_type, notice) VALUES ($1, $2, $3)', [url, type, JSON.stringify(notice)])
    }
  }

  /** Something was queued and committed: send it now rather than at the next look. */
  poke (): void {
    this.wake?.()
  }

  start (): void {
    if (!this.enabled || this.running) return
    this.running = this.loop()
  }

  /** Deliveries to this instance's receivers not yet taken (nor given up), or on their way. */
  async waiting (): Promise<number> {
    const [row] = await this.db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM webhook_deliveries WHERE delivered_at IS NULL AND given_up_at IS NULL AND url = ANY($1::text[])', [this.options.urls])
    return Math.max(row?.n ?? 0, this.attemptsInFlight())
  }

  /** Resolves when nothing is waiting to be sent or on its way (tests). */
  async idle (): Promise<void> {
    while (await this.waiting() > 0) await new Promise((resolve) => setTimeout(resolve, 20))
  }

  /** Stops sending; an attempt cut short is sent again by the next instance to look. */
  async stop (): Promise<void> {
    this.stopping.abort()
    this.wake?.()
    await this.running
    await Promise.allSettled([...this.inFlight.values()].flatMap((attempts) => [...attempts]))
  }

  private attemptsInFlight (): number {
    let n = 0
    for (const attempts of this.inFlight.values()) n += attempts.size
    return n
  }

  private async loop (): Promise<void> {
    const signal = this.stopping.signal
    while (!signal.aborted) {
      const woken = new Promise<void>((resolve) => { this.wake = resolve })
      const claimed = await this.passes.run((abandoned) => this.claimAndSend(abandoned))
      // Took one per receiver: look again at once for the next ones.
      if (claimed.length > 0) continue
      let timer: NodeJS.Timeout | undefined
      await Promise.race([woken, new Promise<void>((resolve) => { timer = setTimeout(resolve, this.options.pollMs ?? 1000) })])
      clearTimeout(timer)
    }
  }

  /** One look: prunes now and then, and sends what is due to the receivers with room. */
  private async claimAndSend (abandoned: AbortSignal): Promise<Delivery[]> {
    await this.prune()
    const free = this.options.urls.filter((url) => (this.inFlight.get(url)?.size ?? 0) < IN_FLIGHT_PER_RECEIVER)
    if (free.length === 0) return []
    const claim = randomUUID()
    const claimed = await this.claim(free, claim)
    // Claimed after the look was given up: leased, and due again when the lease runs out.
    if (abandoned.aborted) return []
    for (const delivery of claimed) this.send(delivery, claim)
    return claimed
  }

  private send (delivery: Delivery, claim: string): void {
    const attempts = this.inFlight.get(delivery.url) ?? new Set()
    this.inFlight.set(delivery.url, attempts)
    const sending: Promise<void> = this.attempt(delivery)
      .then((outcome) => this.record(delivery, claim, outcome))
      .catch((err: Error) => this.log?.error({ err: err.message, receiver: receiverOf(delivery.url) }, 'webhook delivery could not be recorded; it will be sent again'))
      .finally(() => { attempts.delete(sending); this.wake?.() })
    attempts.add(sending)
  }

  /**
   * Takes the oldest due delivery of each receiver given, leasing it for one attempt under
   * `claim`. Rows another instance is claiming at the same moment are waited for, then seen
   * leased (the due condition is checked again on the row as it is then), and skipped.
   */
  private claim (urls: string[], claim: string): Promise<Delivery[]> {
    const leaseSeconds = (this.options.timeoutMs ?? 10_000) / 1000 + 10
    const due = 'delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= now()'
    return this.db.query<Delivery>(`
      UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $1), claim = $3
      WHERE ${due} AND id IN (
        SELECT DISTINCT ON (url) id FROM webhook_deliveries
        WHERE ${due} AND url = ANY($2::text[])
        ORDER BY url, next_attempt_at, id)
      RETURNING id, url, event_type, notice, attempts`, [leaseSeconds, urls, claim])
  }

  private async attempt (delivery: Delivery): Promise<Attempt> {
    const signal = this.stopping.signal
    const notice = JSON.parse(delivery.notice) as Notice
    const body = JSON.stringify({ id: notice.id, type: notice.type, sentAt: new Date().toISOString(), queuedAt: notice.queuedAt, data: notice.data })
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'sos-gateway-server',
          'x-sos-event': delivery.event_type,
          'x-sos-signature': signBody(this.options.secret ?? '', body)
        },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs ?? 10_000)])
      })
      await response.body?.cancel()
      if (response.ok) return { result: 'delivered' }
      const error = `webhook ${receiverOf(delivery.url)} answered HTTP ${response.status}`
      const refused = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429
      return { result: refused ? 'refused' : 'failed', error }
    } catch (err) {
      if (signal.aborted) return { result: 'stopped' }
      return { result: 'failed', error: (err as Error).message }
    }
  }

  /** Records an attempt's outcome, unless its lease ran out and another attempt took over. */
  private async record (delivery: Delivery, claim: string, outcome: Attempt): Promise<void> {
    const mine = 'id = $1 AND claim = $2 AND delivered_at IS NULL AND given_up_at IS NULL'
    const attempt = delivery.attempts + 1
    if (outcome.result === 'stopped') {
      // Not an attempt: due again at once, for whichever instance looks next.
      await this.db.query(`UPDATE webhook_deliveries SET next_attempt_at = now(), claim = NULL WHERE ${mine}`, [delivery.id, claim])
      return
    }
    if (outcome.result === 'delivered') {
      await this.db.query(`UPDATE webhook_deliveries SET delivered_at = now(), attempts = $3, last_error = NULL WHERE ${mine}`, [delivery.id, claim, attempt])
      this.metrics.webhookDeliveries.inc({ result: 'delivered' })
      return
    }
    const retries = this.options.retries ?? 65
    const retry = outcome.result === 'failed' && attempt <= retries
    this.log?.[retry ? 'warn' : 'error']({ receiver: receiverOf(delivery.url), attempt, retriesLeft: retry ? retries - attempt + 1 : 0, err: outcome.error }, retry ? 'webhook delivery failed' : 'webhook delivery given up')
    if (retry) {
      const backoffMs = Math.min(this.options.maxBackoffMs ?? 60_000, (this.options.minBackoffMs ?? 1000) * 2 ** (attempt - 1))
      await this.db.query(`UPDATE webhook_deliveries SET attempts = $3, last_error = $4, next_attempt_at = now() + make_interval(secs => $5) WHERE ${mine}`,
        [delivery.id, claim, attempt, outcome.error.slice(0, 500), backoffMs / 1000])
      this.metrics.webhookDeliveries.inc({ result: 'retried' })
    } else {
      await this.db.query(`UPDATE webhook_deliveries SET attempts = $3, last_error = $4, given_up_at = now() WHERE ${mine}`, [delivery.id, claim, attempt, outcome.error.slice(0, 500)])
      this.metrics.webhookDeliveries.inc({ result: 'failed' })
    }
  }

  /**
   * Delivered ones are kept a week and given-up ones a month, for whoever asks what was sent.
   * Each instance sends only to the receivers it is configured with (instances mid-way through a
   * change of WEBHOOK_URLS may differ); what none has taken for a day is given up.
   */
  private async prune (): Promise<void> {
    if (Date.now() - this.prunedAt < PRUNE_EVERY_MS) return
    this.prunedAt = Date.now()
    await this.db.query(`UPDATE webhook_deliveries SET given_up_at = now(), last_error = 'not sent for a day: no server instance is configured with this receiver'
      WHERE delivered_at IS NULL AND given_up_at IS NULL AND created_at < now() - INTERVAL '1 day'`)
    await this.db.query(`DELETE FROM webhook_deliveries
      WHERE delivered_at < now() - INTERVAL '7 days' OR given_up_at < now() - INTERVAL '30 days'`)
  }
}

/**
 * A receiver as the log may name it: its origin only. A webhook URL's path and query are often
 * its credential (a chat service's incoming-webhook URL is one), and log files travel further
 * than the configuration does.
 */
export function receiverOf (url: string): string {
  try {
    const parsed = new URL(url)
    return parsed.pathname === '/' && !parsed.search ? parsed.origin : `${parsed.origin}/…`
  } catch {
    return '(not a URL)'
  }
}
