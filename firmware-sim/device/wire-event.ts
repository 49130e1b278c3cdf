/**
 * An uplink event as the device builds it. `protocol/event.ts` defines the schema; its
 * `type` and `report.category` come out of the schema type as `never` (the unions are built
 * from arrays), so the device states them with the protocol's own constant lists.
 */
import type { DeviceEvent, EventType, REPORT_CATEGORIES } from '../../protocol/index.js'

export type ReportCategory = typeof REPORT_CATEGORIES[number]

export type WireEvent = Omit<DeviceEvent, 'type' | 'report'> & {
  type: EventType
  report?: { category: ReportCategory, text: string }
}
