/**
 * Step 4: the gateway's view of the event — its stable id, the receive time, and the device
 * clock's skew, flagged outside −40 s/+20 s as SIA DC-09 receivers do.
 */
import { eventIdOf } from '../../protocol/index.js'
import type { Step } from './context.js'

export const SKEW_WINDOW_MS = { behind: 40_000, ahead: 20_000 }

export function createStamp (gatewayId: string): Step {
  return (ctx) => {
    const event = ctx.event!
    const skewMs = event.ts === undefined ? undefined : event.ts - ctx.receivedAt
    ctx.record = {
      eventId: eventIdOf(ctx.session.deviceId, event.seq, event.boot),
      deviceId: ctx.session.deviceId,
      gatewayId,
      receivedAt: ctx.receivedAt,
      ...(skewMs === undefined ? {} : { skewMs }),
      skewed: skewMs !== undefined && (skewMs < -SKEW_WINDOW_MS.behind || skewMs > SKEW_WINDOW_MS.ahead),
      event
    }
    return undefined
  }
}
