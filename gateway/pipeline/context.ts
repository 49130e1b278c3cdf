/**
 * The publish pipeline's shared vocabulary. Each step looks at the context and either lets
 * it go on (returns nothing) or ends it with an outcome. The steps run inside aedes'
 * `authorizePublish`, so the PUBACK waits for the last one.
 */
import type { PublishPacket } from 'aedes'
import type { DeviceEvent, DroppedField, GatewayEvent, ParsedTopic } from '../../protocol/index.js'
import type { DeviceSession } from '../sessions.js'

export interface PublishContext {
  readonly session: DeviceSession
  readonly packet: PublishPacket
  /** Gateway receive time, epoch ms. */
  readonly receivedAt: number
  /** The packet is this client's last will, published by aedes as the connection died. */
  readonly isWill: boolean
  topic?: ParsedTopic
  event?: DeviceEvent
  /** Fields of the payload left out of `event` because they could not be read (telemetry). */
  dropped?: DroppedField[]
  record?: GatewayEvent
}

export type Outcome =
  /** The device's own status (or its will): the gateway keeps the retained status itself. */
  | { kind: 'status' }
  /** Durably in the outbox: PUBACK now. */
  | { kind: 'stored' }
  /**
   * Valid but not kept (rate limit, full outbox): acknowledged and counted. `answer` says
   * whether the device hears `rejected` (not for heartbeats: that would double a flood).
   */
  | { kind: 'shed', reason: string, answer: boolean }
  /** Not this device's to publish: acknowledged, dead-lettered, counted, answered on its own ack topic. */
  | { kind: 'denied', reason: string }
  /** Malformed: acknowledged, dead-lettered, counted, answered `rejected` on the ack topic. */
  | { kind: 'rejected', reason: string, seq?: number }

export type Step = (ctx: PublishContext) => Outcome | undefined | Promise<Outcome | undefined>
