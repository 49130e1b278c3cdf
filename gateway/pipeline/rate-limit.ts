/** Step 3b: routine traffic over the device's budget is shed (acknowledged, counted, not stored). */
import type { DeviceRateLimiter } from '../rate-limiter.js'
import type { Step } from './context.js'

export function createRateLimit (limiter: DeviceRateLimiter): Step {
  return (ctx) => {
    const event = ctx.event!
    if (limiter.allow(ctx.session.deviceId, event.type)) return undefined
    return { kind: 'shed', reason: 'rate_limited', answer: event.type !== 'heartbeat' }
  }
}
