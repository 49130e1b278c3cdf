/**
 * Outbound webhooks (escalations to a duty phone gateway, a chat room, a CAD system).
 * The body is JSON, signed with HMAC-SHA256 over the exact bytes sent:
 *   X-SOS-Signature: sha256=<hex(hmac_sha256(WEBHOOK_SECRET, body))>
 * The body carries `sentAt` so a receiver can refuse old replays. Failed deliveries are
 * retried with exponential backoff; a 4xx other than 408/429 is the receiver refusing, not
 * failing, and is not retried.
 */
import { createHmac, randomUUID } from 'node:crypto'
import pRetry, { AbortError } from 'p-retry'
import type { FastifyBaseLogger } from 'fastify'
import type { ServerMetrics } from '../metrics.js'

export interface WebhookOptions {
  urls: readonly string[]
  secret?: string
  /** Attempts after the first (default 6: about 1 + 2 + 4 + 8 + 16 + 32 s). */
  retries?: number
  minBackoffMs?: number
  maxBackoffMs?: number
  timeoutMs?: number
}

export function signBody (secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

export class WebhookSender {
  private readonly stopping = new AbortController()
  private readonly pending = new Set<Promise<void>>()

  constructor (
    private readonly options: WebhookOptions,
    private readonly metrics: ServerMetrics,
    private readonly log?: FastifyBaseLogger
  ) {}

  get enabled (): boolean {
    return this.options.urls.length > 0 && Boolean(this.options.secret)
  }

  /** Sends to every URL in the background; `stop()` waits for (or abandons) what is in flight. */
  send (type: string, data: Record<string, unknown>): void {
    if (!this.enabled || this.stopping.signal.aborted) return
    const body = JSON.stringify({ id: randomUUID(), type, sentAt: new Date().toISOString(), data })
    for (const url of this.options.urls) {
      const delivery = this.deliver(url, type, body).finally(() => this.pending.delete(delivery))
      this.pending.add(delivery)
    }
  }

  /** Resolves when every delivery started so far is done (tests, graceful close). */
  async idle (): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  async stop (): Promise<void> {
    this.stopping.abort()
    await this.idle()
  }

  private async deliver (url: string, type: string, body: string): Promise<void> {
    const signal = this.stopping.signal
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'sos-gateway-server',
      'x-sos-event': type,
      'x-sos-signature': signBody(this.options.secret ?? '', body)
    }
    try {
      await pRetry(async () => {
        const response = await fetch(url, {
          method: 'POST', headers, body, signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs ?? 10_000)])
        })
        await response.body?.cancel()
        if (response.ok) return
        const error = new Error(`webhook ${url} answered HTTP ${response.status}`)
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) throw new AbortError(error)
        throw error
      }, {
        retries: this.options.retries ?? 6,
        minTimeout: this.options.minBackoffMs ?? 1000,
        maxTimeout: this.options.maxBackoffMs ?? 60_000,
        factor: 2,
        signal,
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft > 0 && !signal.aborted) this.metrics.webhookDeliveries.inc({ result: 'retried' })
          this.log?.warn({ url, attempt: attemptNumber, retriesLeft, err: error.message }, 'webhook delivery failed')
        }
      })
      this.metrics.webhookDeliveries.inc({ result: 'delivered' })
    } catch (err) {
      this.metrics.webhookDeliveries.inc({ result: 'failed' })
      this.log?.error({ url, err: (err as Error).message }, 'webhook delivery given up')
    }
  }
}
