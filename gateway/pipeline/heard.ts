/**
 * Step 3a: a valid event is a sign of life, whatever becomes of it next: shed by the rate
 * limit, or waiting on a disk that hangs. Counted only once it was stored, a heartbeat held up
 * by a stalled disk made its device look silent, and a minute later every device of the
 * gateway was reported offline.
 */
import type { DeviceSession } from '../sessions.js'
import type { Step } from './context.js'

export function createHeard (onHeard: (session: DeviceSession) => void): Step {
  return (ctx) => {
    onHeard(ctx.session)
    return undefined
  }
}
