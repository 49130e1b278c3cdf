/**
 * Step 2, the ACL of DESIGN.md §3: a device publishes only to its own `event` and `status`
 * topics, and subscribes only to its own `ack` and `cmd` topics and its zone's announcements.
 */
import { parseDeviceTopic, topics } from '../../protocol/index.js'
import type { DeviceSession } from '../sessions.js'
import type { Step } from './context.js'

export const authorize: Step = (ctx) => {
  const topic = parseDeviceTopic(ctx.packet.topic)
  if (!topic || topic.deviceId !== ctx.session.deviceId || (topic.kind !== 'event' && topic.kind !== 'status')) {
    return { kind: 'denied', reason: 'topic_not_allowed' }
  }
  ctx.topic = topic
  // Retained state is the gateway's to keep (status, announcements), never a device's.
  ctx.packet.retain = false
  if (topic.kind === 'status') return { kind: 'pass' }
  return undefined
}

export function maySubscribe (session: DeviceSession, topic: string): boolean {
  return topic === topics.ack(session.deviceId) ||
    topic === topics.cmd(session.deviceId) ||
    topic === topics.announce(session.zone)
}
