/** The downlink ack payload (DESIGN.md §3) on `sos/v1/{id}/ack`. */
export const ACK_STATES = ['received', 'acknowledged', 'dispatched', 'resolved', 'cancelled', 'rejected'] as const
export type AckState = typeof ACK_STATES[number]

export interface Ack {
  seq?: number
  state: AckState
  alertId?: string
  /** A kiosk report's ticket id, for the resident to quote (on `received` of a `report`). */
  ticketId?: string
  reason?: string
  /** Set on every ack to a silent device (a shop-counter alarm): show the state, never sound it. */
  silent?: true
}
