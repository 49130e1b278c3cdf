/**
 * An event's id is its own: the one protocol's `eventIdOf` makes from its device, boot and seq
 * (or that id with its receive time, `renamedEventId`, the form of an id reused by another
 * event). The server stores each id once, so it cannot take a gateway's word for it: any gateway
 * token sent events of its own device under ids `X/-/1`, `X/-/2`, … and device X's real presses
 * 1, 2, … were then answered `duplicate` (no alert, the device told "received").
 */
import { eventIdOf, renamedEventId, type GatewayEvent } from '../../protocol/index.js'

/** Why the event's id is not its own, or undefined when it is. */
export function misnamedBecause (e: GatewayEvent): string | undefined {
  const own = eventIdOf(e.deviceId, e.event.seq, e.event.boot)
  if (e.eventId === own || e.eventId === renamedEventId(own, e.receivedAt)) return undefined
  return `event id ${JSON.stringify(e.eventId)} is not the one of its device, boot and seq (${JSON.stringify(own)})`
}
