/** Step 5: the durable write. Only when it resolves does aedes send the PUBACK. */
import type { Outbox } from '../outbox/outbox.js'
import type { Step } from './context.js'

export function createPersist (outbox: Outbox): Step {
  return async (ctx) => {
    const result = await outbox.append(ctx.record!)
    if (result === 'stored') return { kind: 'stored' }
    // Full outbox, routine event: see the policy in outbox.ts.
    return { kind: 'shed', reason: 'outbox_full', answer: ctx.record!.event.type !== 'heartbeat' }
  }
}
