/**
 * Step 2, the ACL of DESIGN.md §3: a device publishes only to its own `event` and `status`
 * topics, and subscribes only to its own `ack` and `cmd` topics and its zone's announcements.
 */
import { TOPIC_ROOT, parseDeviceTopic, topics } from '../../protocol/index.js'
import type { DeviceSession } from '../sessions.js'
import type { Step } from './context.js'

export const authorize: Step = (ctx) => {
  // Retained state is the gateway's to keep (status, announcements), never a device's. A press
  // sent with the retain flag is still a press: strip the flag, do not refuse the alarm.
  ctx.packet.retain = false
  const own = `${TOPIC_ROOT}/${ctx.session.deviceId}/`
  const topic = parseDeviceTopic(ctx.packet.topic)
  if (!topic || topic.deviceId !== ctx.session.deviceId) {
    // Under its own prefix it is the device's mistake (a typo, a new firmware's topic);
    // anywhere else it is an attempt on what is not the device's.
    if (ctx.packet.topic.startsWith(own)) return { kind: 'rejected', reason: `invalid topic: ${ctx.packet.topic.slice(own.length)} is not a device topic` }
    return { kind: 'denied', reason: 'topic_not_allowed' }
  }
  if (topic.kind === 'status') return { kind: 'status' }
  if (topic.kind !== 'event') return { kind: 'denied', reason: 'topic_not_allowed' }
  // A last will is published by whoever ends the connection (the network, a revocation, an
  // intruder taken over by the device's own client id): never an alarm. Only `offline` on its
  // status topic means anything.
  if (ctx.isWill) return { kind: 'rejected', reason: 'last will on the event topic: only the status topic takes a will' }
  ctx.topic = topic
  return undefined
}

export function maySubscribe (session: DeviceSession, topic: string): boolean {
  return topic === topics.ack(session.deviceId) ||
    topic === topics.cmd(session.deviceId) ||
    topic === topics.announce(session.zone)
}
