/**
 * Gateway → server: the batch body of `POST /v1/ingest`, and the server's answer.
 * One definition serves the server's route schema and the gateway's forwarder.
 */
import Type, { type Static } from 'typebox'
import { DeviceEvent } from './event.js'

/**
 * The HTTP header naming the calling gateway (its id, percent-encoded) on every request it
 * makes to the server: the server counts each as a sign of life (server/supervision/gateway-watch.ts).
 */
export const GATEWAY_ID_HEADER = 'x-gateway-id'

/**
 * The HTTP header naming the calling gateway process (random, new at each start), beside its
 * id: two processes calling under one id (a configuration copied with the id) are told apart
 * by it, and reported, since the watch cannot see one of them die while the other calls.
 */
export const GATEWAY_INSTANCE_HEADER = 'x-gateway-instance'

/** The last instant a JavaScript Date holds (ECMAScript: ±8.64e15 ms from the epoch). */
export const LAST_DATE_MS = 8_640_000_000_000_000

/**
 * What is wrong with a gateway id, or undefined: 1–64 characters (as in its events), no
 * control characters (a NUL would fail every write of its contact), nor bidi controls (an id
 * that shows as another: `gw-north` + U+202E + `1-tsol` reads "gw-northlost-1").
 */
export function gatewayIdProblem (id: string): string | undefined {
  if (id.length < 1 || id.length > 64) return `must be 1 to 64 characters, got ${id.length}`
  if (/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/.test(id)) return 'must not hold control characters'
  return undefined
}

/**
 * A gateway's time, epoch ms: at most the last instant a JavaScript Date holds (year 275 760),
 * which a gateway's own clock never passes. Past it (`receivedAt: 9e15`), the time was stored
 * (PostgreSQL's range reaches further) and every list that showed it failed on reading it back.
 */
const EpochMs = () => Type.Integer({ minimum: 0, maximum: LAST_DATE_MS })

/** An accepted device event as the gateway forwards it: the device payload plus what the gateway knows. */
export const GatewayEvent = Type.Object({
  /** Stable identity (device, boot, seq): retries and QoS 1 redeliveries carry the same id. */
  eventId: Type.String({ minLength: 1, maxLength: 160 }),
  deviceId: Type.String({ minLength: 3, maxLength: 64 }),
  gatewayId: Type.String({ minLength: 1, maxLength: 64 }),
  /** Gateway receive time, epoch ms. */
  receivedAt: EpochMs(),
  /** Device clock minus gateway clock, ms, when the device sent `ts`. */
  skewMs: Type.Optional(Type.Integer()),
  /** True when the skew is outside the accepted window (−40 s/+20 s, as SIA DC-09 receivers do). */
  skewed: Type.Boolean(),
  event: DeviceEvent
})
export type GatewayEvent = Static<typeof GatewayEvent>

/** A device came or went, as the gateway saw it (connection, last will, missed heartbeats). */
export const PresenceChange = Type.Object({
  deviceId: Type.String({ minLength: 3, maxLength: 64 }),
  gatewayId: Type.String({ minLength: 1, maxLength: 64 }),
  state: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
  /** epoch ms */
  at: EpochMs(),
  reason: Type.Union([
    Type.Literal('connected'), Type.Literal('disconnected'), Type.Literal('will'),
    Type.Literal('heartbeat_missed'), Type.Literal('revoked')
  ])
})
export type PresenceChange = Static<typeof PresenceChange>

/** A publish the gateway refused, kept with its reason. */
export const DeadLetter = Type.Object({
  deviceId: Type.Optional(Type.String({ maxLength: 64 })),
  gatewayId: Type.String({ minLength: 1, maxLength: 64 }),
  topic: Type.String({ maxLength: 512 }),
  reason: Type.String({ maxLength: 500 }),
  /** The first 4 KiB of the payload, base64. */
  payload: Type.String({ maxLength: 8192 }),
  receivedAt: EpochMs()
})
export type DeadLetter = Static<typeof DeadLetter>

/** The sending gateway's own health, kept by the server (`GET /v1/gateways`, `/metrics`) so a gateway in trouble is seen. */
export const GatewayHealth = Type.Object({
  gatewayId: Type.String({ minLength: 1, maxLength: 64 }),
  outboxDepth: Type.Integer({ minimum: 0 }),
  /** True while the outbox is at its bound and routine events are being shed. */
  outboxFull: Type.Boolean(),
  /** Age of the oldest event still waiting, ms. */
  outboxOldestAgeMs: Type.Optional(Type.Integer({ minimum: 0 }))
})
export type GatewayHealth = Static<typeof GatewayHealth>

export const IngestBatch = Type.Object({
  events: Type.Array(GatewayEvent, { maxItems: 5000 }),
  presence: Type.Optional(Type.Array(PresenceChange, { maxItems: 5000 })),
  deadLetters: Type.Optional(Type.Array(DeadLetter, { maxItems: 5000 })),
  gateway: Type.Optional(GatewayHealth),
  /**
   * The gateway's clock when it sent this request, epoch ms: the server measures the gateway's
   * clock by it and puts the batch's receive times on its own (an alarm through a gateway
   * minutes slow is not dated minutes back, nor one held in its outbox dated now). Optional:
   * without it, receive times are taken as stamped.
   */
  sentAt: Type.Optional(EpochMs())
})
export type IngestBatch = Static<typeof IngestBatch>

export const IngestResult = Type.Object({
  eventId: Type.String(),
  /**
   * `stored` the first time, `duplicate` for a retry of an event already stored, `refused` when
   * the database will not take it (a value it cannot hold): kept as a dead letter, never resent,
   * and the device hears `rejected` with the reason.
   */
  status: Type.Union([Type.Literal('stored'), Type.Literal('duplicate'), Type.Literal('refused')]),
  alertId: Type.Optional(Type.String()),
  /** The alert's state now: a press joining an acknowledged alert should hear "acknowledged" again. */
  alertState: Type.Optional(Type.String()),
  /** For a kiosk `report`: the ticket id the resident can quote. */
  ticketId: Type.Optional(Type.String()),
  /**
   * What the device must hear for this event instead of `received`: only `rejected`, for a cancel
   * the server refused (wrong or missing PIN, cancel window over, no open alert) or an event it
   * could not store, with `reason`.
   */
  ackState: Type.Optional(Type.Literal('rejected')),
  reason: Type.Optional(Type.String()),
  /** The device is a silent alarm: acks to it carry `"silent": true` (show, never sound). */
  silent: Type.Optional(Type.Boolean())
})
export type IngestResult = Static<typeof IngestResult>

export const IngestResponse = Type.Object({
  results: Type.Array(IngestResult)
})
export type IngestResponse = Static<typeof IngestResponse>

/** The identity of an event: a redelivery is the same event, a press after a reboot is not. */
export function eventIdOf (deviceId: string, seq: number, boot?: string): string {
  return `${deviceId}/${boot ?? '-'}/${seq}`
}

/** Gateway ← server: what the gateway needs to authenticate and authorize a device. */
export const DeviceCredential = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  zone: Type.String(),
  silent: Type.Boolean(),
  secretHash: Type.String(),
  revoked: Type.Boolean()
})
export type DeviceCredential = Static<typeof DeviceCredential>

/** Server → gateway: one message to publish to devices (acks after the first, announcements). */
export const DownlinkMessage = Type.Object({
  id: Type.Integer(),
  topic: Type.String(),
  payload: Type.Unknown(),
  retain: Type.Boolean()
})
export type DownlinkMessage = Static<typeof DownlinkMessage>
