/**
 * The gateway assembled: durable state, credential cache, broker with its pipeline,
 * supervision, forwarder (uplink), downlink relay and the operations endpoint. `start`
 * returns a handle whose `stop` closes everything in order and flushes what it can.
 */
import { writeSync } from 'node:fs'
import type { Logger } from 'pino'
import type { Aedes, Client } from 'aedes'
import { ACK_STATES, parseDeviceTopic, topics, type Ack, type DownlinkMessage } from '../protocol/index.js'
import { DEFAULT_HEARTBEAT_INTERVALS_MS, defaultMaxConnections, GATEWAY_DEFAULTS, type GatewayConfig } from './config.js'
import { openStateDb } from './state-db.js'
import { StateWriter } from './state-writer.js'
import { Outbox, adoptLegacyOutbox } from './outbox/outbox.js'
import { DeadLetters } from './dead-letters.js'
import { DeadLetterBudget, heldBackReason } from './dead-letter-budget.js'
import { MAX_WAITING_CHANGES, PresenceLog } from './presence-log.js'
import { CredentialCache } from './credentials.js'
import { ServerClient } from './server-client.js'
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js'
import { createAuthenticate } from './pipeline/authenticate.js'
import { createAuthorizePublish } from './pipeline/publish-pipeline.js'
import { checkPacket } from './pipeline/check-packet.js'
import { authorize } from './pipeline/authorize.js'
import { validate } from './pipeline/validate.js'
import { createRateLimit } from './pipeline/rate-limit.js'
import { createStamp } from './pipeline/stamp.js'
import { createPersist } from './pipeline/persist.js'
import { createHeard } from './pipeline/heard.js'
import { createBroker, listen, type Listeners } from './broker.js'
import { LogBudget } from '../server/log-budget.js'
import { BabblingConnections } from './babbling-connections.js'
import { ackSubscriptionOf, ConnectedDevices, isPrimary, sessionOf } from './sessions.js'
import { DeviceRateLimiter } from './rate-limiter.js'
import { ExtraConnections, extraConnectionsCeiling } from './extra-connections.js'
import { Supervisor } from './supervisor.js'
import { Forwarder } from './forwarder.js'
import { DownlinkRelay } from './downlink.js'
import { AckReplay } from './ack-replay.js'
import { replayAcksOnReturn } from './ack-replay-sessions.js'
import { serveOperations } from './http.js'
import { reportServerAuth } from './server-auth.js'
import { readiness } from './readiness.js'
import { settlesWithin } from './retry.js'

export interface RunningGateway {
  ports: Listeners & { http?: number }
  broker: Aedes
  metrics: GatewayMetrics
  outbox: Outbox
  deadLetters: DeadLetters
  presence: PresenceLog
  supervisor: Supervisor
  credentials: CredentialCache
  /** Closes everything in order; `clean` is false when a thread was left waiting for a hung disk. */
  stop(): Promise<{ clean: boolean }>
}

/** Why a live connection is let go although it signed in rightly then, as the logs say it. */
const DISOWNED = {
  revoked: 'device revoked: closing its connection',
  secret_rotated: 'device secret rotated: closing a connection made with the old one',
  reconfigured: 'device zone or silent flag changed: closing a connection made under the old ones, to reconnect under the new',
  babbling: 'connection shut down for babbling (refused publishes without pause): closing it; its client id is refused at CONNECT for a while'
} as const

/** How long the stop waits for the outbox's last writes (the state writer has its own wait). */
const CLOSE_WAIT_MS = 6000

/**
 * Ends the process with SIGKILL, after a stop that left a thread waiting for a hung disk. A
 * normal exit terminates and joins every thread: it would wait for the disk as long, then abort
 * the thread in the middle of its statement (better-sqlite3 takes the process down with a core
 * dump). Even SIGKILL completes only once the kernel lets the stuck threads go (a thread waiting
 * on the disk cannot be interrupted), but everything else stops at once, and the process goes
 * the moment the disk answers or is given up. The line saying so also goes to stderr,
 * synchronously: pino writes asynchronously, and a SIGKILL drops what it has not written.
 */
export function endPastHungDisk (log: Logger, why = 'a gateway thread still waits for the disk'): void {
  const line = `${why}: ending the process (SIGKILL; what it was writing is lost)`
  log.error(line)
  // pino's own write may still be on its way; this one is done when the call returns.
  try { writeSync(2, `${line}\n`) } catch { /* no stderr: the kill matters more than the line */ }
  process.kill(process.pid, 'SIGKILL')
}

export async function startGateway (config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  // Read here at start-up; written from the writer's thread from now on (state-writer.ts).
  const db = openStateDb(config.dataDir)
  const writer = new StateWriter(db.name, log)
  const metrics = createGatewayMetrics()
  writer.on('failing', (err) => log.error({ err: err.message }, 'state database writes failing (presence, dead letters, credentials); retrying every second'))
  writer.on('recovered', () => log.info('state database writes saved again'))
  writer.on('shed', () => metrics.stateWritesShed.inc())
  metrics.live.stateWriteWaitMs = () => writer.waitMs()
  metrics.live.stateWritesWaiting = () => writer.waiting()
  const server = new ServerClient(config.serverUrl, config.gatewayToken, config.gatewayId)
  reportServerAuth(server.auth, metrics, log)
  // The outbox's worker thread starts while the credentials sync (it takes half a second to
  // load, which after a crash is half a second more before the first PUBACK).
  const outboxOpening = Outbox.open(config.dataDir, config.outboxMaxEvents)
  outboxOpening.catch(() => {}) // awaited below, where its failure stops the start
  const presence = new PresenceLog(db, writer)
  const overflowLines = new LogBudget(1, 60_000, (_, lines) => log.error({ notLogged: lines }, 'more presence changes dropped'))
  presence.on('overflow', (dropped) => {
    metrics.presenceDropped.inc(dropped)
    if (overflowLines.allows('overflow')) log.error({ dropped, bound: MAX_WAITING_CHANGES }, 'presence changes waiting for the server past the bound: superseded ones dropped first, then the oldest')
  })
  let forwarder: Forwarder | undefined
  const deadLetters = new DeadLetters(db, writer, config.gatewayId, 10_000, () => forwarder?.poke())
  const { perWindow, windowMs } = config.deadLetterBudget ?? GATEWAY_DEFAULTS.deadLetterBudget
  // One dead letter says what a device had refused past its budget in the window (how many, why).
  const deadLetterBudget = new DeadLetterBudget(perWindow, windowMs, (deviceId, held) => deadLetters.add({
    deviceId,
    topic: held.topic,
    reason: heldBackReason(held, perWindow, windowMs),
    payload: Buffer.from(JSON.stringify({ heldBack: held.refused, reasons: Object.fromEntries(held.reasons) })),
    receivedAt: Date.now()
  }))

  let broker: Aedes | undefined
  const publish = (topic: string, payload: Buffer, retain: boolean) => {
    broker?.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, (err) => {
      if (err) log.warn({ err, topic }, 'downlink publish failed')
    })
  }
  // Alert states are kept until the device confirms them, and told again when it is back.
  const ackReplay = new AckReplay(db, writer, (topic, body) => publish(topic, Buffer.from(body), false), (deviceId) => {
    // Subscribed on a clean session, or at QoS 0: no PUBACK will ever say it was heard.
    const own = connected.clientsOf(deviceId).find((client) => client.id === deviceId)
    const subscription = own && ackSubscriptionOf(own, deviceId)
    return own !== undefined && subscription !== undefined && (own.clean || subscription.qos === 0)
  })
  metrics.live.acksUnconfirmed = () => ackReplay.size()
  /** Anything for a device or a zone: an ack (from the forwarder or the server's downlink), a command, an announcement. */
  const sendDownlink = (topic: string, payload: unknown, retain: boolean) => {
    const target = !retain && isAlertAck(payload) ? parseDeviceTopic(topic) : null
    if (target?.kind === 'ack') ackReplay.send(target.deviceId, topic, payload as Ack & { alertId: string })
    // '' retained is the server's "nothing now" for a topic (an announcement expired or withdrawn,
    // server/announcements/retained.ts): an empty retained payload, which clears it (MQTT 3.1.1 §3.3.1.3).
    else publish(topic, retain && payload === '' ? Buffer.alloc(0) : Buffer.from(JSON.stringify(payload)), retain)
  }
  const sendToDevice = (topic: string, ack: Ack) => sendDownlink(topic, ack, false)

  const supervisor = new Supervisor({
    gatewayId: config.gatewayId,
    heartbeatIntervalsMs: config.heartbeatIntervalsMs ?? DEFAULT_HEARTBEAT_INTERVALS_MS,
    reconnectGraceMs: config.reconnectGraceMs ?? GATEWAY_DEFAULTS.reconnectGraceMs
  }, presence, (topic, status) => publish(topic, Buffer.from(status), true), metrics, log)

  const connected = new ConnectedDevices()
  const credentials = new CredentialCache(db, writer, server, config.credentialRefreshMs, log, ({ revoked: revokedIds, rotated, reconfigured }) => {
    // A revoked device loses its live connections too, not only its next CONNECT.
    for (const id of revokedIds) {
      supervisor.disconnected(id, 'revoked')
      for (const client of connected.clientsOf(id)) closeDisowned(client, id, 'revoked')
    }
    // A secret is rotated because it leaked: whoever signed in with the old one is let go.
    for (const id of rotated) for (const client of connected.clientsOf(id)) if (holdsOldSecret(client)) closeDisowned(client, id, 'secret_rotated')
    // A session keeps the zone (announce ACL) and silent flag (our own `rejected` acks) it signed
    // in with: a counter corrected to silent must not hear a loud answer during a hold-up, a kiosk
    // moved must get its new zone's announcements. The device reconnects under the new ones.
    for (const id of reconfigured) for (const client of connected.clientsOf(id)) if (!client.closed && holdsOldSettings(client)) closeDisowned(client, id, 'reconfigured')
  }, (result) => metrics.credentialLookups.inc({ result }), (result) => metrics.secretChecks.inc({ result }))
  await credentials.start()

  const outbox = await outboxOpening
  const reportFull = (full: boolean) => {
    metrics.outboxFull.set(full ? 1 : 0)
    if (full) log.error({ depth: outbox.depth(), max: outbox.maxEvents }, 'outbox full: routine events are being shed; alarms are still stored')
  }
  outbox.on('full', (full) => {
    reportFull(full)
    if (!full) log.info({ depth: outbox.depth() }, 'outbox below its bound again')
  })
  outbox.on('evicted', (n) => metrics.outboxEvicted.inc(n))
  outbox.on('committed', (seconds) => metrics.outboxCommit.observe(seconds))
  metrics.live.outboxWriteWaitMs = () => outbox.writeWaitMs()
  // A gateway restarted with a full outbox says so at once, not at the next change.
  reportFull(outbox.full)
  const adopted = await adoptLegacyOutbox(outbox, db, writer)
  if (adopted > 0) log.info({ events: adopted }, 'moved waiting events from the old outbox table')

  const limiter = new DeviceRateLimiter(config.rateLimit ?? GATEWAY_DEFAULTS.rateLimit)
  const maxConnections = config.maxConnections ?? defaultMaxConnections()
  const extraConnections = new ExtraConnections(config.extraConnectionsPerDevice ?? GATEWAY_DEFAULTS.extraConnectionsPerDevice)
  const babblingSettings = config.babblingShutdown ?? GATEWAY_DEFAULTS.babblingShutdown
  const babbling = new BabblingConnections(babblingSettings)
  metrics.live.babblingHeldOff = () => babbling.heldOffCount()
  const extraCeiling = extraConnectionsCeiling(maxConnections)
  /** Clients whose will fired, and clients we closed because their device was revoked. */
  const willFired = new WeakSet<Client>()
  const revoked = new WeakSet<Client>()
  /** Lets a live connection go whose credentials no longer hold, counted and logged by why. */
  const closeDisowned = (client: Client, deviceId: string, reason: keyof typeof DISOWNED, fields: Record<string, unknown> = {}) => {
    // A revoked device's drop is not an outage to report (it is gone on purpose).
    if (reason === 'revoked') revoked.add(client)
    metrics.connectionsClosed.inc({ reason })
    log.warn({ deviceId, clientId: client.id, ...fields }, DISOWNED[reason])
    client.close()
  }
  /** Signed in with a secret the device no longer has (a client certificate holds on). */
  const holdsOldSecret = (client: Client) => {
    const session = sessionOf(client)
    return session?.secretHash !== undefined && session.secretHash !== credentials.get(session.deviceId)?.secretHash
  }
  /** Signed in under a zone or silent flag the device no longer has. */
  const holdsOldSettings = (client: Client) => {
    const session = sessionOf(client)
    const now = session && credentials.get(session.deviceId)
    return now !== undefined && (session!.zone !== now.zone || session!.silent !== now.silent)
  }

  const authorizePublish = createAuthorizePublish({
    steps: [
      checkPacket, authorize, validate, createHeard((session) => supervisor.seen(session.deviceId, session.kind)),
      createRateLimit(limiter), createStamp(config.gatewayId),
      createPersist(outbox, {
        afterMs: config.outboxStallMs ?? GATEWAY_DEFAULTS.outboxStallMs,
        send: (record, signal) => forwarder ? forwarder.unwritten.send(record, signal) : Promise.reject(new Error('not forwarding yet'))
      })
    ],
    deadLetters,
    deadLetterBudget,
    metrics,
    log,
    sendToDevice,
    onWill: (client) => willFired.add(client),
    onRefused: (client, { deviceId }) => {
      const holdOffMs = babbling.refused(client.id)
      if (holdOffMs === 0) return
      metrics.babblingShutdowns.inc()
      // Told to the server too, where the ward's admins look for what a device did wrong (its
      // offline report alone reads like a power cut).
      try {
        deadLetters.add({
          deviceId,
          topic: topics.event(deviceId),
          reason: `babbling: ${babblingSettings.refusals} publishes refused within ${babblingSettings.windowMs / 1000} s; connection ${client.id} closed and refused at CONNECT for ${holdOffMs / 1000} s`,
          payload: Buffer.from(JSON.stringify({ clientId: client.id, heldOffS: holdOffMs / 1000 })),
          receivedAt: Date.now()
        })
      } catch (err) {
        log.error({ err, deviceId }, 'dead letter could not be stored')
      }
      // After this publish's answer: aedes is still inside this connection's packet batch.
      setImmediate(() => { if (!client.closed) closeDisowned(client, deviceId, 'babbling', { heldOffS: holdOffMs / 1000 }) })
    }
  })

  broker = await createBroker(config.gatewayId, {
    // A CONNECT while at capacity: counted here, connected ones in broker.connectedClients.
    // Extra connections ({id}:{suffix}) stop short of it, leaving the rest to devices' own.
    authenticate: createAuthenticate(credentials, metrics, log, (extra) => broker !== undefined && broker.connectedClients >= (extra ? extraCeiling : maxConnections), extraConnections, (clientId) => babbling.heldOffFor(clientId) > 0),
    authorizePublish
  }, log, config.drainTimeoutMs)

  broker.on('clientReady', (client) => {
    const session = sessionOf(client)
    // Revoked while it was connecting (during the secret check, say): the refresh that revoked
    // it found no live connection to close, and says so only once.
    if (session && credentials.get(session.deviceId)?.revoked !== false) return closeDisowned(client, session.deviceId, 'revoked')
    // Likewise rotated while its old secret was being checked.
    if (session && holdsOldSecret(client)) return closeDisowned(client, session.deviceId, 'secret_rotated')
    // Or its zone or silent flag corrected meanwhile.
    if (session && holdsOldSettings(client)) return closeDisowned(client, session.deviceId, 'reconfigured')
    // Or shut down for babbling while its secret was being checked.
    if (session && babbling.heldOffFor(client.id) > 0) return closeDisowned(client, session.deviceId, 'babbling')
    connected.add(client)
    metrics.connections.set(broker!.connectedClients)
    if (session && isPrimary(client)) supervisor.connected(session.deviceId, session.kind)
  })
  // Alert states a device missed, told again when it is back (unless its broker session tells it).
  replayAcksOnReturn(broker, ackReplay, metrics)
  broker.on('clientDisconnect', (client) => {
    connected.remove(client)
    metrics.connections.set(broker!.connectedClients)
    const session = sessionOf(client)
    if (!session) return
    if (!connected.isOnline(session.deviceId)) limiter.forget(session.deviceId)
    if (isPrimary(client) && !revoked.has(client)) supervisor.disconnected(session.deviceId, willFired.has(client) ? 'will' : 'disconnected')
  })
  // The sockets themselves are capped a little higher, so a client over the limit still hears
  // why in a CONNACK, while a flood of sockets that never send CONNECT cannot exhaust descriptors.
  // Reachable without signing in: a few lines every 10 s, however many sockets try.
  const oversizedLines = new LogBudget(5, 10_000, (_, lines) => log.warn({ notLogged: lines }, 'more connections closed for packets over the size limit, not logged one by one'))
  const listeners = await listen(broker, { ...config, maxConnections: maxConnections + 64 }, (client, declaredBytes, limit) => {
    metrics.connectionsClosed.inc({ reason: 'oversized_packet' })
    if (oversizedLines.allows('oversized')) log.warn({ clientId: client.id, declaredBytes, limit }, 'packet over the size limit: closing the connection')
  })

  forwarder = new Forwarder(config.gatewayId, { outbox, presence, deadLetters }, server, sendToDevice, metrics, log, { batchSize: config.forwardBatchSize, intervalMs: config.forwardIntervalMs ?? GATEWAY_DEFAULTS.forwardIntervalMs, parallel: config.forwardParallel ?? GATEWAY_DEFAULTS.forwardParallel })
  const downlink = new DownlinkRelay(db, writer, server, (m: DownlinkMessage) => sendDownlink(m.topic, m.payload, m.retain), metrics, log, config.downlinkWaitMs)
  downlink.restoreRetained()
  supervisor.start()
  forwarder.start()
  downlink.start()

  let stopping = false
  const ops = config.httpPort === undefined
    ? undefined
    : await serveOperations(config.mqttHost, config.httpPort, metrics, {
      health: () => {
        const oldest = outbox.oldestReceivedAt()
        const serverAuthRefused = server.auth.refusal()
        return {
          ...readiness(stopping, serverAuthRefused),
          gatewayId: config.gatewayId,
          connections: broker!.connectedClients,
          outboxDepth: outbox.depth(),
          outboxFull: outbox.full,
          outboxOldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) / 1000,
          // Seconds here: the disk hangs (alarms go to the server from memory meanwhile).
          outboxWriteWaitSeconds: Math.round(outbox.writeWaitMs()) / 1000,
          stateWriteWaitSeconds: Math.round(writer.waitMs()) / 1000,
          // Not null: the server refuses GATEWAY_TOKEN, and nothing reaches it (readiness.ts).
          serverAuthRefused
        }
      }
    }).catch((err: Error) => {
      // Alarms must flow even when the metrics port is taken: run without the endpoint, loudly.
      log.error({ err: err.message, port: config.httpPort }, 'gateway health/metrics endpoint could not listen; running without it')
      return undefined
    })

  const aedes = broker
  return {
    ports: { ...listeners.ports, ...(ops ? { http: ops.port } : {}) },
    broker: aedes,
    metrics,
    outbox,
    deadLetters,
    presence,
    supervisor,
    credentials,
    async stop () {
      stopping = true
      // Stop supervising first: devices dropping because we close are not outages to report.
      supervisor.stop()
      const listenersClosed = listeners.close()
      await forwarder!.stop()
      await downlink.stop()
      credentials.stop()
      await server.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      // What the budget held back (wills of the connections just closed too) is told now: on
      // disk before the state writer closes, forwarded after the restart, not lost with the window.
      deadLetterBudget.flush()
      await listenersClosed
      await ops?.close()
      presence.flush(true)
      // Both on the same disk, both bounded: a disk that hangs must not hold the stop.
      const [outboxClosed, writerClosed] = await Promise.all([settlesWithin(outbox.close(), CLOSE_WAIT_MS), writer.close()])
      // A thread stuck on a hung disk is left behind, and the database with it: closing it here
      // would wait for the disk too.
      if (writerClosed) db.close()
      return { clean: outboxClosed && writerClosed }
    }
  }
}

/** An ack naming an alert: one of the states a device is kept told of (ack-replay.ts). */
function isAlertAck (payload: unknown): payload is Ack & { alertId: string } {
  const ack = payload as Partial<Ack> | null
  return typeof ack === 'object' && ack !== null && typeof ack.alertId === 'string' && (ACK_STATES as readonly unknown[]).includes(ack.state)
}
