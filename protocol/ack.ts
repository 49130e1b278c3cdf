/** The downlink ack payload (DESIGN.md §3) on `sos/v1/{id}/ack`. */
export const ACK_STATES = ['received', 'acknowledged', 'dispatched', 'resolved', 'cancelled', 'rejected'] as const
export type AckState = typeof ACK_STATES[number]

export interface Ack {
  seq?: number
  state: AckState
  alertId?: string
  reason?: string
}
