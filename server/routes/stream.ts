import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { LiveStream, StreamEntry } from '../stream/live-stream.js'
import type { TokenRegistry } from '../auth/tokens.js'
import { bearerToken } from '../plugins/auth.js'

/**
 * What a client that stopped reading may leave unsent before it is let go: a gateway outage's
 * thousands of device changes, times a few stuck tabs, grew the server's memory without end.
 * It reconnects with Last-Event-ID, and catches up or is told to reload.
 */
const MAX_UNSENT_BYTES = 1 << 20

/**
 * `GET /v1/stream`: server-sent events `alert` and `device` (data: JSON), numbered for
 * `Last-Event-ID` resume; `reset` when the client must reload its lists; a comment line
 * every `heartbeatMs` (15 s) so proxies and the client can tell a quiet ward from a dead
 * connection. At each, the token is looked at again: one revoked since ends the stream.
 */
export const streamRoutes: FastifyPluginAsyncTypebox<{ stream: LiveStream, tokens: TokenRegistry, heartbeatMs?: number }> = async (app, { stream, tokens, heartbeatMs = 15_000 }) => {
  const open = new Set<import('node:http').ServerResponse>()
  // Streams never end by themselves: end them before fastify waits for in-flight requests
  // (preClose; onClose runs only after they are done, which would be never).
  app.addHook('preClose', async () => { for (const raw of open) raw.end() })

  app.get('/v1/stream', {
    config: { roles: ['operator', 'analyst'] },
    schema: { tags: ['alerts'], summary: 'Live alert and device changes (text/event-stream)' }
  }, (request, reply) => {
    const raw = reply.raw
    reply.hijack()
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    const write = (text: string) => {
      if (raw.destroyed) return
      if (raw.writableLength > MAX_UNSENT_BYTES) return raw.destroy()
      raw.write(text)
    }
    const send = (entry: StreamEntry) => write(`id: ${stream.idOf(entry)}\nevent: ${entry.event}\ndata: ${JSON.stringify(entry.data)}\n\n`)
    write('retry: 2000\n\n')

    const lastEventId = request.headers['last-event-id']
    if (typeof lastEventId === 'string' && lastEventId !== '') {
      const missed = stream.since(lastEventId)
      if (missed === null) write('event: reset\ndata: {}\n\n')
      else missed.forEach(send)
    }
    open.add(raw)
    const unsubscribe = stream.subscribe(send, () => write('event: reset\ndata: {}\n\n'))
    const token = bearerToken(request)
    const heartbeat = setInterval(() => {
      write(': keep-alive\n\n')
      // Unreadable now (the database away): the stream goes on until the next look.
      if (token) tokens.resolve(token).then((still) => { if (!still) raw.end() }, () => {})
    }, heartbeatMs)
    request.raw.once('close', () => {
      clearInterval(heartbeat)
      unsubscribe()
      open.delete(raw)
    })
  })
}
