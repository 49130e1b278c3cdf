/**
 * The publish pipeline `[checkPacket, authorize, validate, heard, rateLimit, stamp, persist]`
 * (authenticate ran at CONNECT), run inside aedes' `authorizePublish`. Bad device input is
 * logged, counted, answered and skipped (bad telemetry beside a good event: left out of it,
 * dead-lettered and counted); nothing a device sends can throw into the broker.
 */
import type { Client, PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { parseDeviceTopic, topics, type Ack } from '../../protocol/index.js'
import type { DeadLetters } from '../dead-letters.js'
import type { DeadLetterBudget } from '../dead-letter-budget.js'
import type { GatewayMetrics } from '../metrics.js'
import { sessionOf, type DeviceSession } from '../sessions.js'
import type { Outcome, PublishContext, Step } from './context.js'
import { LogBudget } from '../../server/log-budget.js'

export interface PipelineDeps {
  steps: Step[]
  deadLetters: DeadLetters
  /** How many of a device's refused publishes are kept whole; unset, every one. */
  deadLetterBudget?: DeadLetterBudget
  metrics: GatewayMetrics
  log: Logger
  /** Sends a message to a device (the broker's own publish). */
  sendToDevice: (topic: string, payload: Ack) => void
  /** The client's last will is being published: its connection died without DISCONNECT. */
  onWill?: (client: Client, session: DeviceSession) => void
  /** A publish of this connection was refused (malformed, not its topic, over its routine rate with an answer): babbling-connections.ts counts them. */
  onRefused?: (client: Client, session: DeviceSession) => void
}

/** A topic no client can subscribe to: where refused publishes go instead of being routed. */
const DROP_TOPIC = '$drop/refused'

export function createAuthorizePublish (deps: PipelineDeps) {
  const { steps, deadLetters, metrics, log } = deps
  // A full disk fails every write at once: one line a second says so (with how many it stands
  // for), rather than a stack trace per device per retry.
  const storeFailureLines = new LogBudget(1, 1000, (_, lines) => log.error({ notLogged: lines }, 'more events could not be stored, not logged one by one'))
  const storeFailureLog = (err: Error, deviceId: string) => {
    if (storeFailureLines.allows('store')) log.error({ err: err.message, code: (err as { code?: string }).code, deviceId }, 'event could not be stored; refusing it so the device retries')
  }
  // Refused input: a few lines per device every 10 s, however fast it sprays.
  const refusalLines = new LogBudget(5, 10_000, (deviceId, lines) => log.info({ deviceId, notLogged: lines }, 'more refusals of this device, not logged one by one'))

  const logRefusal = (deviceId: string, level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => {
    if (refusalLines.allows(deviceId)) log[level]({ deviceId, ...fields }, message)
  }

  return function authorizePublish (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    const session = sessionOf(client)
    if (!session) {
      // No client: aedes publishing the will of a connection from before a restart. The
      // gateway owns retained status, so such a will goes nowhere.
      if (client === null && parseDeviceTopic(packet.topic)?.kind === 'status') {
        drop(packet)
        return callback(null)
      }
      drop(packet)
      return callback(client ? new Error('not authenticated') : null)
    }
    metrics.eventsIn.inc()
    // aedes passes the client's stored will packet itself when the connection dies.
    const isWill = client !== null && packet === (client as unknown as { will?: unknown }).will
    // Synchronously: aedes emits clientDisconnect right after this call returns.
    if (isWill) deps.onWill?.(client, session)
    const ctx: PublishContext = { session, packet, receivedAt: Date.now(), isWill }
    const deadLetter = (reason: string) => {
      // Past the device's budget: still answered and counted, and told in the window's summary.
      if (deps.deadLetterBudget?.allows(session.deviceId, reasonLabel(reason), packet.topic) === false) return metrics.deadLettersHeldBack.inc()
      try {
        deadLetters.add({ deviceId: session.deviceId, topic: packet.topic, reason, payload: Buffer.from(packet.payload), receivedAt: ctx.receivedAt })
      } catch (err) {
        log.error({ err, deviceId: session.deviceId }, 'dead letter could not be stored')
      }
    }
    // The executor runs the steps at once; a step that throws becomes the rejection below.
    new Promise<Outcome>((resolve) => resolve(run(steps, ctx))).then((outcome) => {
      // The event went on without telemetry it could not read: kept whole as a dead letter, so
      // a maintainer sees the faulty gauge, but no rejection (the alarm itself was good).
      if (ctx.dropped && (outcome.kind === 'stored' || outcome.kind === 'shed')) {
        for (const { field } of ctx.dropped) metrics.telemetryDropped.inc({ field })
        const reason = `telemetry dropped, event kept: ${ctx.dropped.map((d) => d.reason).join('; ')}`
        logRefusal(session.deviceId, 'info', { seq: ctx.event!.seq, reason }, 'event kept without telemetry it could not read')
        deadLetter(reason)
      }
      switch (outcome.kind) {
        case 'status':
          // Only the gateway publishes retained status (online on connect, offline when the
          // device is gone); a device's own status message and its will are signals, not state.
          drop(packet)
          return callback(null)
        case 'stored':
          metrics.eventsAccepted.inc({ type: ctx.event!.type })
          metrics.pubackLatency.observe((Date.now() - ctx.receivedAt) / 1000)
          // Stored is delivered: the event goes to the server, never on to subscribers (the
          // ACL lets none subscribe to an event topic; a cancel carries its PIN).
          drop(packet)
          return callback(null)
        case 'shed':
          metrics.eventsShed.inc({ type: ctx.event!.type, reason: outcome.reason })
          // Over its own rate (not the gateway's full outbox: no doing of the device's), and
          // answered: heartbeats over it are dropped unanswered, cheaply, and a firmware's
          // backlog of them sent at once after a long outage is no babble.
          if (outcome.reason === 'rate_limited' && outcome.answer && client) deps.onRefused?.(client, session)
          if (outcome.answer && !isWill) deps.sendToDevice(topics.ack(session.deviceId), refusal(session, { seq: ctx.event!.seq, state: 'rejected', reason: outcome.reason }))
          drop(packet)
          return callback(null)
        case 'denied':
          metrics.eventsRejected.inc({ reason: outcome.reason })
          if (client) deps.onRefused?.(client, session)
          logRefusal(session.deviceId, 'warn', { topic: packet.topic }, 'publish denied: not this device\'s topic')
          deadLetter(`denied: ${outcome.reason}`)
          // A will's device is gone: a `rejected` queued for its next session would answer
          // nothing it sent then.
          if (!isWill) deps.sendToDevice(topics.ack(session.deviceId), refusal(session, { state: 'rejected', reason: 'topic not allowed' }))
          drop(packet)
          return callback(null)
        case 'rejected':
          metrics.eventsRejected.inc({ reason: reasonLabel(outcome.reason) })
          if (client) deps.onRefused?.(client, session)
          logRefusal(session.deviceId, 'info', { reason: outcome.reason }, 'event rejected')
          deadLetter(outcome.reason)
          if (!isWill) deps.sendToDevice(topics.ack(session.deviceId), refusal(session, { ...(outcome.seq === undefined ? {} : { seq: outcome.seq }), state: 'rejected', reason: outcome.reason }))
          drop(packet)
          return callback(null)
      }
    }, (err: Error) => {
      // Not durable (disk full, I/O error): no PUBACK. The error closes the connection and
      // the device sends the event again when it reconnects.
      metrics.storeFailures.inc()
      storeFailureLog(err, session.deviceId)
      callback(err)
    })
  }
}

/**
 * Runs the steps in order until one gives an outcome. Steps that answer synchronously stay
 * synchronous (no promise per step per event); only the durable write waits.
 */
function run (steps: Step[], ctx: PublishContext, from = 0): Outcome | Promise<Outcome> {
  for (let i = from; i < steps.length; i++) {
    const outcome = steps[i]!(ctx)
    if (outcome instanceof Promise) return outcome.then((o) => o ?? run(steps, ctx, i + 1))
    if (outcome) return outcome
  }
  throw new Error('publish pipeline ended without an outcome')
}

/** Acknowledged but not routed: aedes publishes after authorizePublish, so send it nowhere. */
function drop (packet: PublishPacket): void {
  packet.topic = DROP_TOPIC
  packet.retain = false
}

/** Metric labels must stay few: the reason's leading words, not the field detail. */
function reasonLabel (reason: string): string {
  return reason.split(':')[0]!.replace(/[^a-z0-9]+/gi, '_').toLowerCase().slice(0, 40)
}

/**
 * The gateway's own `rejected` answer, marked `silent` for a silent device as the server's acks
 * are (protocol/ack.ts): a counter that beeps on an error unless told it is silent must not
 * sound during a hold-up because its cancel was rate-limited or its payload malformed.
 */
function refusal (session: DeviceSession, ack: Ack): Ack {
  return session.silent ? { ...ack, silent: true } : ack
}
