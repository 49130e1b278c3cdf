/**
 * Step 3b: routine traffic over the device's budget is shed (acknowledged, counted, not
 * stored). A copy of an event that passed (its id, device, boot and seq, and its very bytes:
 * what a QoS 1 redelivery or a firmware's retry sends) is not charged again.
 */
import { createHash } from 'node:crypto'
import { eventIdOf } from '../../protocol/index.js'
import type { DeviceRateLimiter } from '../rate-limiter.js'
import type { Step } from './context.js'

export function createRateLimit (limiter: DeviceRateLimiter): Step {
  return (ctx) => {
    const event = ctx.event!
    const { deviceId } = ctx.session
    const copyKey = () => `${eventIdOf(deviceId, event.seq, event.boot)} ${createHash('sha256').update(ctx.packet.payload).digest('base64')}`
    if (limiter.allow(deviceId, event.type, copyKey)) return undefined
    return { kind: 'shed', reason: 'rate_limited', answer: event.type !== 'heartbeat' }
  }
}
