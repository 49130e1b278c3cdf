/**
 * When a device is told again the alert states it has not confirmed (ack-replay.ts), and when its
 * confirmation is taken: from the broker's session events.
 *
 * - A persistent session resumed here, subscribed at QoS 1, is not told again: the broker
 *   delivers itself what it queued for the session and what the device had not confirmed, every
 *   state published since that subscription. Told again besides, the device heard each twice at
 *   every return (review 71), a SUBSCRIBE it sends anyway too (it may come before `clientReady`:
 *   the broker takes packets while it empties the queue, so this is decided at CONNACK). At QoS 0
 *   the broker queues nothing for it (review 73).
 * - Otherwise a connection is told again once, at its SUBSCRIBE to its ack topic: what this
 *   broker never queued for it (published before a restart, before this session subscribed, or
 *   at another gateway).
 * - Only the device's own PUBACK confirms a state: a service tool's `{id}:{suffix}` connection
 *   hearing it is not the device hearing it.
 */
import type { Aedes, Client } from 'aedes'
import { topics } from '../protocol/index.js'
import type { AckReplay } from './ack-replay.js'
import type { GatewayMetrics } from './metrics.js'
import { ackSubscriptionOf, isPrimary, sessionOf } from './sessions.js'

export function replayAcksOnReturn (broker: Aedes, ackReplay: AckReplay, metrics: GatewayMetrics): void {
  /** Connections told again what their device missed, or whose broker session tells them: once each. */
  const toldAgain = new WeakSet<Client>()

  broker.on('connackSent', (connack, client) => {
    const session = sessionOf(client)
    if (!connack.sessionPresent || client.clean || !session || !isPrimary(client)) return
    if ((ackSubscriptionOf(client, session.deviceId)?.qos ?? 0) > 0) toldAgain.add(client)
  })
  broker.on('subscribe', (subscriptions, client) => {
    const session = sessionOf(client)
    if (!session || !isPrimary(client) || !ackReplay.holds(session.deviceId) || toldAgain.has(client)) return
    const ackTopic = topics.ack(session.deviceId)
    if (!subscriptions.some((s) => s.topic === ackTopic)) return
    toldAgain.add(client)
    metrics.acksReplayed.inc(ackReplay.replay(session.deviceId, ackTopic))
  })
  broker.on('ack', (packet, client) => {
    const session = sessionOf(client)
    if (!session || !ackReplay.holds(session.deviceId) || !packet || !('topic' in packet) || !isPrimary(client)) return
    if (packet.topic === topics.ack(session.deviceId)) ackReplay.confirmed(session.deviceId, packet.payload)
  })
}
