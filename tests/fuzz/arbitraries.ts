/**
 * fast-check generators for the device protocol, built from the contract (DESIGN.md §3), not
 * from the validator's code: every value `validDeviceEvent` makes must be accepted.
 */
import fc from 'fast-check'
import { EVENT_TYPES, REPORT_CATEGORIES, type DeviceEvent } from '../../protocol/index.js'
import type { GatewayEvent } from '../../protocol/index.js'
import { eventIdOf } from '../../protocol/index.js'

/** How long property runs last; raise FUZZ_RUNS for a longer hunt. */
export const runs = (base: number) => Math.round(base * Number(process.env.FUZZ_RUNS_FACTOR || 1))

const bootChars = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-']

export const validDeviceEvent: fc.Arbitrary<DeviceEvent> = fc.record({
  seq: fc.maxSafeNat(),
  boot: fc.option(fc.string({ unit: fc.constantFrom(...bootChars), minLength: 1, maxLength: 36 }), { nil: undefined }),
  type: fc.constantFrom(...EVENT_TYPES.filter((t) => t !== 'report')),
  ts: fc.option(fc.integer({ min: 0, max: 8_640_000_000_000_000 }), { nil: undefined }),
  battery: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  rssi: fc.option(fc.integer({ min: -200, max: 0 }), { nil: undefined }),
  fw: fc.option(fc.string({ minLength: 1, maxLength: 32 }), { nil: undefined }),
  pin: fc.option(fc.stringMatching(/^[0-9]{4,8}$/), { nil: undefined })
}, { requiredKeys: ['seq', 'type'] }).map((e) => dropUndefined(e) as DeviceEvent)

export const validReportEvent: fc.Arbitrary<DeviceEvent> = fc.record({
  seq: fc.maxSafeNat(),
  type: fc.constant('report' as const),
  report: fc.record({ category: fc.constantFrom(...REPORT_CATEGORIES), text: fc.string({ maxLength: 1000 }) })
  // protocol/event.ts' Static type widens `type` and `category` to never (unions built with
  // .map); the runtime schema is what the property checks.
}) as unknown as fc.Arbitrary<DeviceEvent>

export const anyValidEvent = fc.oneof(validDeviceEvent, validReportEvent)

/**
 * Fields a newer firmware might add, holding anything JSON can (prototype-pollution keys,
 * control characters, lone surrogates included): the validator drops them unread.
 */
export const unknownFields = fc.dictionary(
  fc.oneof(
    fc.constantFrom('__proto__', 'constructor', 'prototype'),
    fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !['seq', 'boot', 'type', 'ts', 'battery', 'rssi', 'fw', 'pin', 'report'].includes(k))
  ),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 4 }
)

export function gatewayEventOf (deviceId: string, event: DeviceEvent, receivedAt: number): GatewayEvent {
  return { eventId: eventIdOf(deviceId, event.seq, event.boot), deviceId, gatewayId: 'gw-fuzz', receivedAt, skewed: false, event }
}

function dropUndefined (o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}
