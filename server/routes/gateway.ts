import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { GATEWAY_ID_HEADER, GATEWAY_INSTANCE_HEADER, IngestBatch, IngestResponse, gatewayIdProblem } from '../../protocol/index.js'
import type { Ingestor } from '../ingest/ingest.js'
import type { DeviceStore } from '../devices/store.js'
import type { DownlinkQueue } from '../downlink/queue.js'
import type { GatewayWatch } from '../supervision/gateway-watch.js'
import { dateOrUndefined } from './schemas.js'

/**
 * What gateways call: ingest (uplink), device credentials (so they authenticate devices
 * themselves, and keep doing so while the server is away), and the downlink long poll.
 * Every call a gateway makes tells the gateway watch it is alive: it polls again as soon as a
 * long poll ends, so a live one calls at least every `wait` ms. (The end of a poll is no sign:
 * the answer to a host that lost power mid-poll is written all the same.)
 */
/**
 * A gateway's query parameters beyond those named are let pass (people's lists refuse them:
 * validators-by-part.ts): a server rolled back under gateways that already send a new one must
 * go on giving them credentials and downlinks.
 */
const GATEWAY_QUERY = { additionalProperties: true }

export const gatewayRoutes: FastifyPluginAsyncTypebox<{ ingestor: Ingestor, devices: DeviceStore, downlink: DownlinkQueue, gatewayWatch: GatewayWatch }> = async (app, { ingestor, devices, downlink, gatewayWatch }) => {
  const waiting = new Set<AbortController>()
  app.addHook('preClose', async () => { for (const poll of waiting) poll.abort() })
  // After authentication and validation (a batch's outbox report comes with its call): only a
  // gateway's word counts. An ingest batch does not wait for it: an alarm's answer never waits
  // on bookkeeping.
  const unnamed = new Set<string>()
  app.addHook('preHandler', async (request) => {
    if (request.principal?.role !== 'gateway') return
    const id = gatewayIdOf(request.headers[GATEWAY_ID_HEADER])
    if (!id) {
      // Said once per token: an older gateway, or a proxy that drops the header.
      if (!unnamed.has(request.principal.name) && unnamed.add(request.principal.name)) {
        request.log.warn({ token: request.principal.name }, `a gateway calls without ${GATEWAY_ID_HEADER}: the server cannot tell when it is lost`)
      }
      return
    }
    const ingest = request.routeOptions.url === '/v1/ingest'
    const heard = gatewayWatch.heard(id, ingest ? (request.body as IngestBatch).gateway : undefined, instanceOf(request.headers[GATEWAY_INSTANCE_HEADER]))
    if (!ingest) await heard
  })

  // The gateway's clock is measured against when its request came in (`sentAt` against the
  // arrival of its headers), not when the handler runs: a wait for a busy database in between
  // is not the gateway's clock being off, and taken for it, dated every alarm later by as much.
  app.post('/v1/ingest', {
    config: { roles: ['gateway'] },
    bodyLimit: 16 * 1024 * 1024,
    schema: { tags: ['gateway'], summary: 'Store a batch of device events; idempotent by event id', body: IngestBatch, response: { 200: IngestResponse } }
  }, async (request) => ({ results: await ingestor.ingest(request.body, request.arrivedAt) }))

  app.get('/v1/gateway/devices', {
    config: { roles: ['gateway'] },
    schema: {
      tags: ['gateway'],
      summary: 'Device credentials (secret hashes) for gateway-side authentication',
      querystring: Type.Object({
        id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        changedSince: Type.Optional(Type.String({ format: 'date-time' }))
      }, GATEWAY_QUERY)
    }
  }, async (request) => {
    const { id, changedSince } = request.query
    const asOf = new Date()
    return { asOf: asOf.toISOString(), devices: await devices.credentials({ id, changedSince: dateOrUndefined(changedSince, 'changedSince') }) }
  })

  app.get('/v1/gateway/downlink', {
    config: { roles: ['gateway'] },
    schema: {
      tags: ['gateway'],
      summary: 'Messages for devices after a position; waits up to `wait` ms for the first (long poll)',
      querystring: Type.Object({
        after: Type.Optional(Type.Integer({ minimum: 0 })),
        wait: Type.Integer({ minimum: 0, maximum: 60_000, default: 25_000 }),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 })
      }, GATEWAY_QUERY)
    }
  }, async (request) => {
    const gone = new AbortController()
    request.raw.once('close', () => gone.abort())
    // A waiting poll must not hold the server's shutdown for its whole wait (ended in preClose).
    waiting.add(gone)
    gone.signal.addEventListener('abort', () => waiting.delete(gone))
    const { after, wait, limit } = request.query
    return downlink.read(after, wait, limit, gone.signal)
  })
}

/** The id a gateway names itself by, percent-encoded (any GATEWAY_ID); 1–64 characters, as in its events. */
function gatewayIdOf (header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  try {
    const id = decodeURIComponent(header)
    return gatewayIdProblem(id) === undefined ? id : undefined
  } catch {
    return undefined
  }
}

/** A gateway process's instance id: printable, at most 64 characters (else ignored: older gateways send none). */
function instanceOf (header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && /^[\x21-\x7e]{1,64}$/.test(header) ? header : undefined
}
