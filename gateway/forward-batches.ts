/**
 * What goes in one request to the server (forwarder.ts): a lane's events dealt out to parallel
 * requests by device, and the presence changes that may ride with a device's alarms.
 */
import type { OutboxEntry } from './outbox/outbox.js'

/**
 * Up to `parts` groups, each holding its devices' events in their order, and at most `max`
 * events: what does not fit (the latest events of a group) waits for the next round, which
 * keeps every device's order and every request within the server's batch limit.
 */
export function splitByDevice (events: OutboxEntry[], parts: number, max: number): OutboxEntry[][] {
  if (parts <= 1) return [events.slice(0, max)]
  const groups: OutboxEntry[][] = Array.from({ length: parts }, () => [])
  const groupOf = new Map<string, OutboxEntry[]>()
  let next = 0
  for (const e of events) {
    let group = groupOf.get(e.deviceId)
    // Devices are dealt round-robin in order of first appearance: even enough, and stable.
    if (!group) groupOf.set(e.deviceId, group = groups[next++ % parts]!)
    group.push(e)
  }
  return groups.filter((g) => g.length > 0).map((g) => g.slice(0, max))
}

/** The presence changes of the devices these events are of, in their order. */
export function ownPresence<C extends { change: { deviceId: string } }> (changes: C[], events: Array<{ deviceId: string }>): C[] {
  const devices = new Set(events.map((e) => e.deviceId))
  return changes.filter((c) => devices.has(c.change.deviceId))
}
