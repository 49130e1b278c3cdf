/**
 * In-process notifications after a change is committed: the live stream (`GET /v1/stream`)
 * and the gateways' downlink long-poll wait on these instead of polling the database.
 */
import { EventEmitter } from 'node:events'

export interface BusEvents {
  /** An alert was opened or changed (state, press count, escalation). */
  alert: [{ alertId: string, deviceId: string, state: string, kind: string, escalationLevel?: number }]
  /** Device registry or device health changed. */
  device: [{ deviceId: string, change: string }]
  /** A kiosk report was filed (`open`) or closed by an operator. */
  report: [{ reportId: string, deviceId: string, state: 'open' | 'closed' }]
  /** New downlink rows exist up to this id. */
  downlink: [{ head: number }]
}

export class Bus extends EventEmitter<BusEvents> {
  constructor () {
    super()
    // Every waiting gateway and every stream client adds a listener.
    this.setMaxListeners(0)
  }
}
