/**
 * The two per-request log lines: which requests get them, and what they may say.
 *
 * Gateways post batches and long-poll hundreds of times a second: a line each would bury
 * everything else and cost more CPU than storing the batch. Their requests are logged only when
 * they fail; everyone else's always.
 *
 * No route reads a token from the query string, but people put one there anyway (`?token=`,
 * `?access_token=`, as other APIs and EventSource examples do). Logged whole, the URL left the
 * bearer token in every log file and log shipper, so such values are written as [redacted].
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

function isGatewayTraffic (request: FastifyRequest): boolean {
  return request.url.startsWith('/v1/ingest') || request.url.startsWith('/v1/gateway/')
}

/**
 * Query parameters whose values are secrets by their names, in any case, with any prefix
 * (`access_token`) and any brackets after (`token[]`).
 */
const SECRET_PARAMETER = /(token|tokens|secret|password|passwd|pin|key|auth|authorization|bearer|jwt|session|sid|credentials?|signature|sig)(\[[^\]]*\])*$/i

/** The URL as it may be logged: each secret query value replaced, everything else as sent. */
export function loggableUrl (url: string): string {
  const queryAt = url.indexOf('?')
  if (queryAt < 0) return url
  const query = url.slice(queryAt + 1).split('&').map((pair) => {
    const equals = pair.indexOf('=')
    const name = equals < 0 ? pair : pair.slice(0, equals)
    let decoded = name
    try { decoded = decodeURIComponent(name) } catch { /* logged as sent */ }
    return equals >= 0 && SECRET_PARAMETER.test(decoded.replace(/[^\w[\]]+$/, '').trim()) ? `${name}=[redacted]` : pair
  })
  return `${url.slice(0, queryAt)}?${query.join('&')}`
}

export class RequestLogging extends LogController {
  override incomingRequest (request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (isGatewayTraffic(request) || this.isLogDisabled(request)) return
    // Fastify's own request serializer still runs on this and reads what it always does
    // (method, url, host, ip, socket: the caller's address and port); only the URL is made safe.
    const req = { method: request.method, url: loggableUrl(request.url), headers: request.headers, host: request.host, ip: request.ip, socket: request.socket }
    request.log.info({ req }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || reply.statusCode >= 400 || !isGatewayTraffic(request)) super.requestCompleted(error, request, reply, metadata)
  }
}
