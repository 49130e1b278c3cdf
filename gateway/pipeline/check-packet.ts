/**
 * Step 0: the packet itself, before its topic means anything. aedes (through mqtt-packet)
 * tolerates a QoS 1 packet id of 0 and decodes topic bytes leniently, so invalid UTF-8 and
 * control characters reach us; MQTT 3.1.1 forbids both (§2.3.1, §1.5.3).
 */
import { topicProblem } from '../../protocol/index.js'
import type { Step } from './context.js'

export const checkPacket: Step = (ctx) => {
  const { packet } = ctx
  // A last will carries no packet id: the broker publishes it for the dead connection.
  if (packet.qos > 0 && !packet.messageId && !ctx.isWill) return { kind: 'rejected', reason: 'invalid packet: packet id 0 on a QoS 1/2 publish' }
  const problem = topicProblem(packet.topic)
  if (problem) return { kind: 'rejected', reason: `invalid topic: ${problem}` }
  return undefined
}
