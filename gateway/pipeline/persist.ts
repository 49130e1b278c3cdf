/** Step 5: the durable write. Only when it resolves does aedes send the PUBACK. */
import type { Outbox } from '../outbox.js'
import type { Step } from './context.js'

export function createPersist (outbox: Outbox): Step {
  return async (ctx) => {
    await outbox.append(ctx.record!)
    return { kind: 'stored' }
  }
}
