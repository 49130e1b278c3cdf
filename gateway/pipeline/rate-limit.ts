/**
 * Step 3b: routine traffic over the device's budget is shed (acknowledged, counted, not
 * stored). A resend of an event that passed is known by its id (device, boot, seq), as the
 * outbox and the server know it, and is not charged again.
 */
import { eventIdOf } from '../../protocol/index.js'
import type { DeviceRateLimiter } from '../rate-limiter.js'
import type { Step } from './context.js'

export function createRateLimit (limiter: DeviceRateLimiter): Step {
  return (ctx) => {
    const event = ctx.event!
    const { deviceId } = ctx.session
    if (limiter.allow(deviceId, event.type, eventIdOf(deviceId, event.seq, event.boot))) return undefined
    return { kind: 'shed', reason: 'rate_limited', answer: event.type !== 'heartbeat' }
  }
}
