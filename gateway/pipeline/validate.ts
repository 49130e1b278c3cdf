/**
 * Step 3: the payload against the protocol schema (size, UTF-8, JSON, fields). Telemetry that
 * cannot be read is left out of the event rather than refusing it (protocol/event.ts); the
 * pipeline dead-letters and counts what was left out.
 */
import { parseDeviceEvent } from '../../protocol/index.js'
import type { Step } from './context.js'

export const validate: Step = (ctx) => {
  const parsed = parseDeviceEvent(ctx.packet.payload as Buffer)
  if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason, seq: parsed.seq }
  ctx.event = parsed.event
  if (parsed.dropped) ctx.dropped = parsed.dropped
  return undefined
}
