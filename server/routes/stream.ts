import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { LiveStream, StreamEntry } from '../stream/live-stream.js'

const HEARTBEAT_MS = 15_000

/**
 * `GET /v1/stream`: server-sent events `alert` and `device` (data: JSON), numbered for
 * `Last-Event-ID` resume; `reset` when the client must reload its lists; a comment line
 * every 15 s so proxies and the client can tell a quiet ward from a dead connection.
 */
export const streamRoutes: FastifyPluginAsyncTypebox<{ stream: LiveStream }> = async (app, { stream }) => {
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
    const send = (entry: StreamEntry) => raw.write(`id: ${stream.idOf(entry)}\nevent: ${entry.event}\ndata: ${JSON.stringify(entry.data)}\n\n`)
    raw.write('retry: 2000\n\n')

    const lastEventId = request.headers['last-event-id']
    if (typeof lastEventId === 'string' && lastEventId !== '') {
      const missed = stream.since(lastEventId)
      if (missed === null) raw.write('event: reset\ndata: {}\n\n')
      else missed.forEach(send)
    }
    open.add(raw)
    const unsubscribe = stream.subscribe(send, () => raw.write('event: reset\ndata: {}\n\n'))
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS)
    request.raw.once('close', () => {
      clearInterval(heartbeat)
      unsubscribe()
      open.delete(raw)
    })
  })
}
