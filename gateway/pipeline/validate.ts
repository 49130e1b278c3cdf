/** Step 3: the payload against the protocol schema (size, UTF-8, JSON, fields). */
import { parseDeviceEvent } from '../../protocol/index.js'
import type { Step } from './context.js'

export const validate: Step = (ctx) => {
  const parsed = parseDeviceEvent(ctx.packet.payload as Buffer)
  if (!parsed.ok) return { kind: 'rejected', reason: parsed.reason, seq: parsed.seq }
  ctx.event = parsed.event
  return undefined
}
