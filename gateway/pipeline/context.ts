/**
 * The publish pipeline's shared vocabulary. Each step looks at the context and either lets
 * it go on (returns nothing) or ends it with an outcome. The steps run inside aedes'
 * `authorizePublish`, so the PUBACK waits for the last one.
 */
import type { PublishPacket } from 'aedes'
import type { DeviceEvent, GatewayEvent, ParsedTopic } from '../../protocol/index.js'
import type { DeviceSession } from '../sessions.js'

export interface PublishContext {
  readonly session: DeviceSession
  readonly packet: PublishPacket
  /** Gateway receive time, epoch ms. */
  readonly receivedAt: number
  topic?: ParsedTopic
  event?: DeviceEvent
  record?: GatewayEvent
}

export type Outcome =
  /** Allowed and needs nothing more (the device's own status). */
  | { kind: 'pass' }
  /** Durably in the outbox: PUBACK now. */
  | { kind: 'stored' }
  /** Not this device's to publish: acknowledged, dropped, counted. */
  | { kind: 'denied', reason: string }
  /** Malformed: acknowledged, dead-lettered, counted, answered `rejected` on the ack topic. */
  | { kind: 'rejected', reason: string, seq?: number }

export type Step = (ctx: PublishContext) => Outcome | undefined | Promise<Outcome | undefined>
