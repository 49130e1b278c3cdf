/**
 * Whether the server accepts this gateway's credentials (GATEWAY_TOKEN). A wrong or revoked
 * token is not an outage that heals by itself: every request is refused (401, or 403 for a
 * token of another role) until someone fixes the token, while devices still get their PUBACKs
 * (the outbox keeps their events) and their presses reach no one. So it is said at once and
 * plainly: one error line when the refusal starts, one info line when it ends, a gauge, a
 * counter, and the gateway's `/healthz` and `/readyz` (readiness.ts), rather than a warning per
 * retry that looks like any network hiccup.
 */
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { LogBudget } from '../server/log-budget.js'
import type { GatewayMetrics } from './metrics.js'

/** A spell of refusals, as `/healthz` shows it. */
export interface CredentialRefusal {
  /** The latest refusal's status: 401 (token unknown or revoked) or 403 (a token of another role). */
  status: number
  /** When this spell started (ISO 8601). */
  since: string
  /** The latest refused request, without its query: `POST /v1/ingest`. */
  request: string
  /** The server asked, without any user name or password the URL may hold. */
  server: string
  /** Requests refused since the spell started. */
  refusals: number
}

/** The answers that say the server will not take these credentials (a proxy's included). */
export function isCredentialRefusal (status: number): boolean {
  return status === 401 || status === 403
}

/** A URL safe to show and log: no user name, password, query or fragment. */
export function withoutSecrets (url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    parsed.search = ''
    parsed.hash = ''
    return parsed.href
  } catch {
    return '(unparsable URL)'
  }
}

export class ServerAuth extends EventEmitter<{ refused: [CredentialRefusal], accepted: [{ refusedForMs: number, refusal: CredentialRefusal }], refusal: [status: number] }> {
  private sent = 0
  /** The request whose answer decided the state last: only a request sent after it may change it. */
  private decidedBy = 0
  private current?: CredentialRefusal & { sinceMs: number }

  constructor (readonly server: string, private readonly now: () => number = Date.now) {
    super()
  }

  /**
   * Numbers a request as it goes out. The server checks the token as a request arrives, so
   * answers are ordered by when their requests were sent, not when they came back: a downlink
   * long poll sent before a revocation still answers 200 up to a minute later, and must not
   * end a refusal that requests sent since have met.
   */
  sending (): number {
    return ++this.sent
  }

  /** The answer's status to request `ticket` (`method path`); other answers than 2xx, 401 and 403 say nothing about the token. */
  answered (ticket: number, status: number, request: string): void {
    const refused = isCredentialRefusal(status)
    if (refused) this.emit('refusal', status)
    if (!refused && (status < 200 || status > 299)) return
    if (ticket < this.decidedBy) {
      // Too old to decide anything; a refusal all the same, in the spell's count.
      if (refused && this.current) this.current.refusals++
      return
    }
    this.decidedBy = ticket
    if (refused) return this.refusedNow(status, request)
    const ended = this.current
    if (!ended) return
    this.current = undefined
    const { sinceMs, ...refusal } = ended
    this.emit('accepted', { refusedForMs: Math.max(0, this.now() - sinceMs), refusal })
  }

  /** The spell under way, or null while the server takes our credentials (or has not answered yet). */
  refusal (): CredentialRefusal | null {
    if (!this.current) return null
    const { sinceMs, ...refusal } = this.current
    return refusal
  }

  private refusedNow (status: number, request: string): void {
    if (this.current) {
      Object.assign(this.current, { status, request, refusals: this.current.refusals + 1 })
      return
    }
    const now = this.now()
    this.current = { status, since: new Date(now).toISOString(), request, server: this.server, refusals: 1, sinceMs: now }
    this.emit('refused', this.refusal()!)
  }
}

/**
 * Counts, gauges and logs the refusals: one line when a spell starts, one when it ends, not one
 * per retry (retry.ts stays quiet about them). Server instances behind a load balancer that
 * disagree on the token (one of them not told of a new one) would start and end a spell at
 * nearly every request: their lines are budgeted (three starts and three ends a minute), and what a minute held back
 * is told in a line.
 */
export function reportServerAuth (auth: ServerAuth, metrics: GatewayMetrics, log: Logger): void {
  const lines = new LogBudget(3, 60_000, (spellLines, notLogged) => log.error({ notLogged, spellLines },
    'the server refused and accepted this gateway\'s credentials by turns, more often than logged (server instances with different GATEWAY_TOKENs?)'))
  auth.on('refusal', (status) => metrics.serverAuthRefusals.inc({ status: String(status) }))
  auth.on('refused', (refusal) => {
    metrics.serverAuthRefused.set(1)
    if (!lines.allows('started')) return
    log.error({ status: refusal.status, request: refusal.request, server: refusal.server },
      'the server refuses this gateway\'s credentials (GATEWAY_TOKEN wrong or revoked?): device events are kept in the outbox and sent once it accepts them; /readyz answers 503 until then')
  })
  auth.on('accepted', ({ refusedForMs, refusal }) => {
    metrics.serverAuthRefused.set(0)
    if (!lines.allows('ended')) return
    log.info({ refusedForSeconds: Math.round(refusedForMs / 1000), refusals: refusal.refusals, server: refusal.server },
      'the server accepts this gateway\'s credentials again: sending what the outbox kept')
  })
}
