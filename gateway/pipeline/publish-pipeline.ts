/**
 * The publish pipeline `[authorize, validate, stamp, persist]` (authenticate ran at CONNECT),
 * run inside aedes' `authorizePublish`. Bad device input is logged, counted, answered and
 * skipped; nothing a device sends can throw into the broker.
 */
import type { Client, PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { parseDeviceTopic, topics, type Ack } from '../../protocol/index.js'
import type { DeadLetters } from '../dead-letters.js'
import type { GatewayMetrics } from '../metrics.js'
import { sessionOf } from '../sessions.js'
import type { Outcome, PublishContext, Step } from './context.js'

export interface PipelineDeps {
  steps: Step[]
  deadLetters: DeadLetters
  metrics: GatewayMetrics
  log: Logger
  /** Sends a message to a device (the broker's own publish). */
  sendToDevice: (topic: string, payload: Ack) => void
}

/** A topic no client can subscribe to: where refused publishes go instead of being routed. */
const DROP_TOPIC = '$drop/refused'

export function createAuthorizePublish (deps: PipelineDeps) {
  const { steps, deadLetters, metrics, log } = deps

  return function authorizePublish (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void {
    const session = sessionOf(client)
    if (!session) {
      // No client: aedes publishing the will of a connection from before a restart. A will
      // may only ever say a device's status.
      if (client === null && parseDeviceTopic(packet.topic)?.kind === 'status') return callback(null)
      drop(packet)
      return callback(client ? new Error('not authenticated') : null)
    }
    metrics.eventsIn.inc()
    const ctx: PublishContext = { session, packet, receivedAt: Date.now() }
    run(steps, ctx).then((outcome) => {
      switch (outcome.kind) {
        case 'pass':
          return callback(null)
        case 'stored':
          metrics.eventsAccepted.inc({ type: ctx.event!.type })
          metrics.pubackLatency.observe((Date.now() - ctx.receivedAt) / 1000)
          return callback(null)
        case 'denied':
          metrics.eventsRejected.inc({ reason: outcome.reason })
          log.warn({ deviceId: session.deviceId, topic: packet.topic }, 'publish denied: not this device\'s topic')
          drop(packet)
          return callback(null)
        case 'rejected':
          metrics.eventsRejected.inc({ reason: reasonLabel(outcome.reason) })
          log.info({ deviceId: session.deviceId, reason: outcome.reason }, 'event rejected')
          deadLetters.add({ deviceId: session.deviceId, topic: packet.topic, reason: outcome.reason, payload: Buffer.from(packet.payload), receivedAt: ctx.receivedAt })
          deps.sendToDevice(topics.ack(session.deviceId), { ...(outcome.seq === undefined ? {} : { seq: outcome.seq }), state: 'rejected', reason: outcome.reason })
          drop(packet)
          return callback(null)
      }
    }, (err: Error) => {
      // Not durable (disk full, I/O error): no PUBACK. The error closes the connection and
      // the device sends the event again when it reconnects.
      log.error({ err, deviceId: session.deviceId }, 'event could not be stored; refusing it so the device retries')
      callback(err)
    })
  }
}

async function run (steps: Step[], ctx: PublishContext): Promise<Outcome> {
  for (const step of steps) {
    const outcome = await step(ctx)
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
