import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { LiveStream } from '../stream/live-stream.js'
import { StreamFeed } from '../stream/stream-feed.js'
import { StreamSlots } from '../stream/stream-slots.js'
import type { TokenRegistry } from '../auth/tokens.js'
import { actor, bearerToken } from '../plugins/auth.js'
import { HttpError } from '../plugins/errors.js'
import { SERVER_DEFAULTS } from '../config.js'

/**
 * What a client that stopped reading may miss before it is let go (see StreamFeed: the entries
 * wait in the live stream's replay, not in its socket). It reconnects with Last-Event-ID, and
 * catches up or is told to reload.
 */
const MAX_MISSED_BYTES = 1 << 20

export interface StreamRouteOptions {
  stream: LiveStream
  tokens: TokenRegistry
  heartbeatMs?: number
  /** Open streams allowed per token and in all (STREAMS_PER_TOKEN, STREAMS_TOTAL). */
  limits?: { perToken: number, total: number }
}

/**
 * `GET /v1/stream`: server-sent events `alert` and `device` (data: JSON), numbered for
 * `Last-Event-ID` resume; `reset` when the client must reload its lists; a comment line
 * every `heartbeatMs` (15 s) so proxies and the client can tell a quiet ward from a dead
 * connection. At each, the token is looked at again: one revoked since ends the stream.
 * A stream beyond the limits is answered 429, before anything is streamed.
 */
export const streamRoutes: FastifyPluginAsyncTypebox<StreamRouteOptions> = async (app, options) => {
  const { stream, tokens, heartbeatMs = 15_000 } = options
  const slots = new StreamSlots(options.limits ?? { perToken: SERVER_DEFAULTS.streamsPerToken, total: SERVER_DEFAULTS.streamsTotal })
  const open = new Set<import('node:http').ServerResponse>()
  // Streams never end by themselves: end them before fastify waits for in-flight requests
  // (preClose; onClose runs only after they are done, which would be never).
  app.addHook('preClose', async () => { for (const raw of open) raw.end() })

  app.get('/v1/stream', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['alerts'], summary: 'Live alert and device changes (text/event-stream)' }
  }, async (request, reply) => {
    const slot = slots.take(actor(request).tokenId)
    if ('refused' in slot) throw new HttpError(429, 'TOO_MANY_STREAMS', slot.refused)
    const raw = reply.raw
    reply.hijack()
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    const feed = new StreamFeed(stream, raw, MAX_MISSED_BYTES)
    const lastEventId = request.headers['last-event-id']
    feed.start(typeof lastEventId === 'string' ? lastEventId : undefined)
    open.add(raw)
    const unsubscribe = stream.subscribe((entry) => feed.entry(entry), () => feed.reset())
    const token = bearerToken(request)
    const heartbeat = setInterval(() => {
      feed.keepAlive()
      // Unreadable now (the database away): the stream goes on until the next look.
      if (token) tokens.resolve(token).then((still) => { if (!still) raw.end() }, () => {})
    }, heartbeatMs)
    const ended = () => {
      clearInterval(heartbeat)
      unsubscribe()
      open.delete(raw)
      slot.release()
    }
    request.raw.once('close', ended)
    // Gone while its token was looked up: its 'close' came already, and would never again.
    if (request.raw.socket.destroyed) ended()
  })
}
