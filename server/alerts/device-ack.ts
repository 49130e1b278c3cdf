/**
 * Acks the server sends to devices (DESIGN.md §3), plus one field of ours: `"silent": true`
 * on every ack to a silent device (a shop-counter alarm). The device shows the state on its
 * LED or screen only and never sounds a buzzer or speaker for it: whoever threatens the
 * shop owner must not hear that help was called. Devices that ignore unknown fields simply
 * never get it set (only devices provisioned `silent`).
 */
import type { Ack } from '../../protocol/index.js'

export type DeviceAck = Ack & { silent?: true }

export function deviceAck (ack: Ack, silent: boolean): DeviceAck {
  return silent ? { ...ack, silent: true } : ack
}
