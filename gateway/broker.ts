/**
 * The embedded aedes broker and its listeners (TCP, WebSocket, TLS when configured), with
 * our handlers plugged in: authenticate at CONNECT, the publish pipeline, the subscribe ACL.
 */
import { createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer } from 'node:tls'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Logger } from 'pino'
import { maySubscribe } from './pipeline/authorize.js'
import { sessionOf } from './sessions.js'
import { LogBudget } from '../server/log-budget.js'
import { assertPacketSizeGuardable, guardPacketSize, MAX_PACKET_BYTES } from './packet-size-guard.js'
import type { GatewayConfig } from './config.js'

export interface BrokerHandlers {
  authenticate: (client: Client, username: string | undefined, password: Buffer | undefined, done: (error: AuthenticateError | null, success: boolean | null) => void) => void
  authorizePublish: (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) => void
}

/** The part of aedes' persistence (untyped on the broker) that stores a session's subscriptions. */
interface SubscriptionStore {
  addSubscriptions (client: Client, subscriptions: Subscription[]): Promise<void>
}

export interface Listeners {
  mqtt: number
  ws: number
  tls?: number
}

export async function createBroker (gatewayId: string, handlers: BrokerHandlers, log: Logger, drainTimeoutMs = 10_000): Promise<Aedes> {
  const deniedLines = new LogBudget(5, 10_000, (deviceId, lines) => log.warn({ deviceId, notLogged: lines }, 'more subscriptions denied, not logged one by one'))
  const broker = await Aedes.createBroker({
    id: gatewayId,
    // One frozen subscriber must not stall delivery to everyone else.
    drainTimeout: drainTimeoutMs,
    // Messages being routed at once. Each QoS 1 delivery (every `received` ack) holds a slot
    // until its socket write completes, so aedes' default of 100 caps the gateway near 10k
    // messages/s; beyond the cap mqemitter queues in an array it drains with shift(), which
    // turns a burst into a quadratic slowdown (a 2-core profile at 5k/s: 21% of the CPU).
    // Nothing else bounds on it: a slow subscriber is bounded by drainTimeout.
    concurrency: 100_000,
    connectTimeout: 10_000,
    // Client ids are `{deviceId}` or `{deviceId}:{suffix}`, longer than MQTT 3.1's 23 chars.
    maxClientsIdLength: 160,
    maxTopicLevels: 8,
    authenticate: handlers.authenticate,
    authorizePublish: handlers.authorizePublish,
    authorizeSubscribe (client: Client, subscription: Subscription, callback) {
      const session = sessionOf(client)
      if (session && maySubscribe(session, subscription.topic)) return callback(null, subscription)
      // By device: a device may connect under any number of `{id}:{suffix}` client ids.
      if (deniedLines.allows(session?.deviceId ?? '')) log.warn({ clientId: client.id, topic: subscription.topic }, 'subscription denied')
      // A negated subscription (SUBACK 0x80) rather than an error, which would drop the connection.
      callback(null, null)
    },
    // The ACL again at delivery, for what reached a subscription some other way: a persistent
    // session's offline queue is filled from the subscriptions aedes stored (see below).
    authorizeForward (client: Client, packet) {
      const session = sessionOf(client)
      return session && maySubscribe(session, packet.topic) ? packet : null
    }
  })
  // aedes stores a persistent session's SUBSCRIBE as the client sent it, refused topics and all,
  // once any of them was granted (handlers/subscribe.js storeSubscriptions), and queues what
  // matches them while the client is away: `#` beside its own ack topic, and one device's
  // secret read every device's events, cancel PINs included. Only what the ACL grants is kept.
  const persistence = (broker as unknown as { persistence: SubscriptionStore }).persistence
  const addSubscriptions = persistence.addSubscriptions.bind(persistence)
  persistence.addSubscriptions = (client: Client, subscriptions: Subscription[]) => {
    const session = sessionOf(client)
    return addSubscriptions(client, subscriptions.filter((s) => session !== undefined && maySubscribe(session, s.topic)))
  }
  broker.on('clientError', (client, err) => log.debug({ clientId: client?.id, err: err.message }, 'client error'))
  broker.on('connectionError', (client, err) => log.debug({ clientId: client?.id, err: err.message }, 'connection error'))
  return broker
}

/**
 * Opens the configured listeners; port 0 picks a free port (tests). `onOversized` hears of each
 * connection closed for a packet (or WebSocket frame) over its limit.
 */
export async function listen (broker: Aedes, config: GatewayConfig, onOversized: (client: Client, declaredBytes: number, limit: number) => void): Promise<{ ports: Listeners, close: () => Promise<void> }> {
  assertPacketSizeGuardable(broker)
  const servers: Server[] = []
  const open = async (server: Server, port: number) => {
    servers.push(server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, config.mqttHost, () => { server.off('error', reject); resolve() })
    })
    return (server.address() as AddressInfo).port
  }

  // Each listener is capped too (the broker's preConnect caps the total): a socket beyond it is
  // closed before it costs more than a file descriptor for a moment.
  const cap = <S extends Server>(server: S): S => {
    if (config.maxConnections) server.maxConnections = config.maxConnections
    return server
  }
  // Nagle off, as for the WebSocket listener (node:http's default). With it on, a `received`
  // ack written while the device had not yet ACKed our PUBACK at the TCP level waited for the
  // device's delayed ACK (40 ms on Linux), and a PUBACK behind an ack likewise.
  const serve = (stream: Duplex, request?: IncomingMessage) => {
    const client = broker.handle(stream, request)
    guardPacketSize(client, (declared, limit) => onOversized(client, declared, limit))
    return client
  }
  const handle = (socket: Socket) => { socket.setNoDelay(true); serve(socket) }
  const mqtt = await open(cap(createTcpServer(handle)), config.mqttPort)

  const http = cap(createHttpServer((_req, res) => { res.writeHead(426).end('MQTT over WebSocket only\n') }))
  // ws buffers a whole frame before handing it over (100 MiB by default). A frame may carry
  // several MQTT packets, so it may be a few packet limits long; the guard caps each packet.
  const maxFrame = 4 * MAX_PACKET_BYTES
  const wss = new WebSocketServer({ server: http, maxPayload: maxFrame })
  wss.on('connection', (socket, request) => {
    const client = serve(createWebSocketStream(socket), request)
    // ws closes such a frame's connection itself (1009); counted and told like a packet's.
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') onOversized(client, maxFrame + 1, maxFrame)
    })
  })
  const ws = await open(http, config.mqttWsPort)

  let tls: number | undefined
  if (config.tlsCertFile && config.tlsKeyFile && config.mqttTlsPort !== undefined) {
    const tlsServer = createTlsServer({
      cert: readFileSync(config.tlsCertFile),
      key: readFileSync(config.tlsKeyFile),
      // Client certificates (CN = device id) when a CA is configured; authenticate.ts reads them.
      ...(config.tlsCaFile
        ? { ca: readFileSync(config.tlsCaFile), requestCert: true, rejectUnauthorized: config.tlsRequireClientCert === true }
        : {})
    }, handle)
    tls = await open(cap(tlsServer), config.mqttTlsPort)
  }

  return {
    ports: { mqtt, ws, ...(tls === undefined ? {} : { tls }) },
    async close () {
      for (const client of wss.clients) client.terminate()
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
    }
  }
}
