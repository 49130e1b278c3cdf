/**
 * The server as an application: services wired to routes. It owns no process concerns
 * (ports, signals, files): tests build it per test and call it with `inject`.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Database } from './db/database.js'
import { Bus } from './bus.js'
import { BusBridge } from './bus-bridge.js'
import { TokenRegistry, type StaticToken } from './auth/tokens.js'
import { DeviceStore } from './devices/store.js'
import { AlertStore } from './alerts/store.js'
import { AlertLifecycle } from './alerts/lifecycle.js'
import { DownlinkQueue } from './downlink/queue.js'
import { Ingestor } from './ingest/ingest.js'
import { RequestLogging } from './plugins/request-logging.js'
import { registerAuth } from './plugins/auth.js'
import { registerStorableText } from './plugins/storable-text.js'
import { clientErrorHandler, frameworkErrors, registerErrorHandling } from './plugins/errors.js'
import { validatorsByPart } from './plugins/validators-by-part.js'
import { healthRoutes } from './routes/health.js'
import { deviceRoutes } from './routes/devices.js'
import { tokenRoutes } from './routes/tokens.js'
import { alertRoutes } from './routes/alerts.js'
import { eventRoutes } from './routes/events.js'
import { gatewayRoutes } from './routes/gateway.js'
import { gatewaysRoutes } from './routes/gateways.js'
import { streamRoutes } from './routes/stream.js'
import { consoleRoutes, consoleSettingsFromEnv } from './routes/console.js'
import { LiveStream } from './stream/live-stream.js'
import { ErrorBody } from './routes/schemas.js'
import { reportRoutes } from './routes/reports.js'
import { announcementRoutes } from './routes/announcements.js'
import { insightRoutes } from './routes/insights.js'
import { ReportStore } from './reports/store.js'
import { Announcements } from './announcements/service.js'
import { ServerMetrics } from './metrics.js'
import { WebhookSender } from './escalation/webhooks.js'
import { Escalator } from './escalation/escalator.js'
import { GatewayWatch, type GatewayWatchOptions } from './supervision/gateway-watch.js'
import { SERVER_DEFAULTS, type ServerConfig } from './config.js'
import { DeadLetterRetention } from './db/dead-letter-retention.js'

/** The long-lived parts, reachable for tests and the process entry. */
export interface AppServices {
  metrics: ServerMetrics
  escalator: Escalator
  gatewayWatch: GatewayWatch
  webhooks: WebhookSender
  bus: Bus
}

declare module 'fastify' {
  interface FastifyInstance {
    services: AppServices
  }
  interface FastifyRequest {
    /** When the request came in (epoch ms), before any hook ran. */
    arrivedAt: number
  }
}

export interface AppOptions {
  db: Database
  /** Tokens from configuration (ADMIN_TOKEN, GATEWAY_TOKEN). */
  staticTokens: StaticToken[]
  /** A pino logger; none = silent (tests). */
  logger?: FastifyBaseLogger
  /** Lifecycle settings (defaults: SERVER_DEFAULTS, no webhooks). */
  settings?: Pick<ServerConfig, 'cancelWindowMs' | 'escalateAfterMs' | 'gatewayLostAfterMs' | 'webhookUrls' | 'webhookSecret' | 'streamsPerToken' | 'streamsTotal' | 'deadLetterRetentionDays'>
  /** The live stream's heartbeat, which also looks at the token again (default 15 s; tests shorten it). */
  streamHeartbeatMs?: number
  /** Gateway watch timing beyond GATEWAY_LOST_AFTER (tests set it). */
  gatewayWatch?: Pick<GatewayWatchOptions, 'checkEveryMs' | 'stallAfterMs'>
  /** Webhook retry timing (tests shorten it). */
  webhookBackoff?: { minBackoffMs: number, maxBackoffMs: number, retries?: number }
  /** A part of this process still starting, if any (see routes/health.ts). */
  starting?: () => string | undefined
}

export async function buildApp (options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // Clients behind a slow link get time; a stuck request does not hold a socket forever.
    requestTimeout: 120_000,
    // Ids in paths are checked by each route's schema (and answered 400 in our error format);
    // the router's own limit of 100 cut in first, with a 414 of its own, before authentication.
    routerOptions: { maxParamLength: 512 },
    logController: new RequestLogging(),
    // Query strings and path parameters read as their types, bodies taken only as they are.
    schemaController: { compilersFactory: { buildValidator: validatorsByPart() } },
    // What the router and Node's parser refuse before a route runs: in our error shape too.
    frameworkErrors,
    clientErrorHandler
  }).withTypeProvider<TypeBoxTypeProvider>()

  // When each request came in, before any hook waits (a token looked up on a busy database):
  // a gateway's clock is measured against it (routes/gateway.ts).
  app.decorateRequest('arrivedAt', 0)
  app.addHook('onRequest', async (request) => { request.arrivedAt = Date.now() })

  const { db } = options
  const bus = new Bus()
  const tokens = new TokenRegistry(db, options.staticTokens)
  const settings = options.settings ?? {}
  const metrics = new ServerMetrics(db)
  const devices = new DeviceStore(db)
  const alerts = new AlertStore(db)
  const downlink = new DownlinkQueue(db, bus)
  const lifecycle = new AlertLifecycle(db, downlink, bus, metrics, app.log)
  const ingestor = new Ingestor(db, bus, lifecycle, metrics, { cancelWindowMs: settings.cancelWindowMs ?? SERVER_DEFAULTS.cancelWindowMs }, app.log)
  const stream = new LiveStream(bus)
  const reports = new ReportStore(db, bus)
  const announcements = new Announcements(db, downlink)
  // The background loops query through connections of their own where there are pools.
  const loopsDb = db.loops ?? db
  const webhooks = new WebhookSender(loopsDb, { urls: settings.webhookUrls ?? [], secret: settings.webhookSecret, ...options.webhookBackoff }, metrics, app.log)
  const escalator = new Escalator(loopsDb, bus, webhooks, metrics, { escalateAfterMs: settings.escalateAfterMs ?? SERVER_DEFAULTS.escalateAfterMs }, app.log)
  const gatewayWatch = new GatewayWatch(loopsDb, bus, lifecycle, metrics, { lostAfterMs: settings.gatewayLostAfterMs ?? SERVER_DEFAULTS.gatewayLostAfterMs, ...options.gatewayWatch }, app.log)
  app.decorate('services', { metrics, escalator, gatewayWatch, webhooks, bus })
  // The watchers run while the app does: started when ready, stopped (timers, webhooks) on close.
  // Several instances on one PostgreSQL database share their bus (PGlite is one process's own).
  const deadLetterRetention = new DeadLetterRetention(loopsDb, { keepDays: settings.deadLetterRetentionDays ?? SERVER_DEFAULTS.deadLetterRetentionDays }, app.log)
  const bridge = db.listen ? new BusBridge(db as Database & Required<Pick<Database, 'listen'>>, bus, () => stream.resetAll(), app.log) : undefined
  app.addHook('onReady', async () => { await bridge?.start(); escalator.start(); webhooks.start(); deadLetterRetention.start(); await gatewayWatch.start(); await announcements.start(app.log) })
  app.addHook('onClose', async () => { await Promise.all([escalator.stop().then(() => webhooks.stop()), gatewayWatch.stop(), deadLetterRetention.stop(), announcements.stop()]); await bridge?.stop() })

  registerErrorHandling(app)
  // A POST without a body (`acknowledge`, `close`) is an empty object, not a validation error.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method === 'POST' && request.routeOptions.schema?.body) request.body = {}
  })
  registerAuth(app, tokens)
  registerStorableText(app)
  // Every answer: read as the type it says (no sniffing), never shown inside another site's frame
  // (an acknowledge button under someone else's page), and no Referer sent on from it.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
  })
  app.addSchema(ErrorBody)
  await app.register(swagger, {
    openapi: {
      info: { title: 'SOS gateway API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }]
    }
  })
  // Same origin as the console and the token it keeps: the docs page gets a policy of its own
  // (swagger-ui's, never framed, and without upgrade-insecure-requests, which broke it over
  // plain http on a local network).
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformStaticCSP: (header: string) => header.replace(/\s*upgrade-insecure-requests;?/, '').replace("frame-ancestors 'self'", "frame-ancestors 'none'")
      // Its own inline styles (the page renders without, a few parts look off).
      .replace("style-src 'self' https:", "style-src 'self' https: 'unsafe-inline'")
  })

  await app.register(healthRoutes, { db, metrics: metrics.scrape, starting: options.starting })
  await app.register(deviceRoutes, { devices, bus })
  await app.register(tokenRoutes, { tokens })
  await app.register(alertRoutes, { alerts, lifecycle })
  await app.register(eventRoutes, { db })
  await app.register(gatewayRoutes, { ingestor, devices, downlink, gatewayWatch })
  await app.register(gatewaysRoutes, { gatewayWatch })
  const streamLimits = { perToken: settings.streamsPerToken ?? SERVER_DEFAULTS.streamsPerToken, total: settings.streamsTotal ?? SERVER_DEFAULTS.streamsTotal }
  await app.register(streamRoutes, { stream, tokens, limits: streamLimits, ...(options.streamHeartbeatMs ? { heartbeatMs: options.streamHeartbeatMs } : {}) })
  await app.register(reportRoutes, { reports })
  await app.register(announcementRoutes, { announcements })
  await app.register(insightRoutes, { db })
  await app.register(consoleRoutes, { settings: consoleSettingsFromEnv() })
  return app
}
