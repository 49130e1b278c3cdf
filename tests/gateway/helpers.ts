/** Small helpers the gateway suites share: raw MQTT frames, retained state, metrics. */
import type { Aedes } from 'aedes'
import type { MqttClient } from 'mqtt'
import type { RunningGateway } from '../../gateway/gateway.js'

/**
 * Writes a PUBLISH frame by hand on a connected client's socket: what a broken or hostile
 * firmware can send and MQTT.js would never produce (invalid UTF-8 topics, packet id 0).
 */
export function writeRawPublish (client: MqttClient, topic: Buffer, payload: Buffer, messageId: number, qos: 0 | 1 = 1): void {
  const body = Buffer.concat([
    Buffer.from([topic.length >> 8, topic.length & 0xff]),
    topic,
    qos > 0 ? Buffer.from([messageId >> 8, messageId & 0xff]) : Buffer.alloc(0),
    payload
  ])
  const length: number[] = []
  let n = body.length
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    length.push(byte)
  } while (n > 0)
  ;(client as unknown as { stream: NodeJS.WritableStream }).stream.write(Buffer.concat([Buffer.from([0x30 | (qos << 1), ...length]), body]))
}

/** Retained messages the broker holds for a topic pattern. */
export async function retainedMessages (broker: Aedes, pattern: string): Promise<Array<{ topic: string, payload: string }>> {
  const found: Array<{ topic: string, payload: string }> = []
  const persistence = (broker as unknown as { persistence: { createRetainedStream(p: string): AsyncIterable<{ topic: string, payload: Buffer }> } }).persistence
  for await (const packet of persistence.createRetainedStream(pattern)) found.push({ topic: packet.topic, payload: Buffer.from(packet.payload).toString() })
  return found
}

/** The value of one metric series (0 when absent). */
export async function metricValue (gateway: RunningGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await gateway.metrics.registry.getSingleMetric(name)?.get()
  if (!metric) return 0
  const series = metric.values.filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val))
  return series.reduce((sum, v) => sum + v.value, 0)
}
