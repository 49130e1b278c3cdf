/** Small helpers the gateway suites share: raw MQTT frames, retained state, metrics. */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Aedes } from 'aedes'
import type { IngestBatch } from '../../protocol/index.js'
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
  ;(client as unknown as { stream: NodeJS.WritableStream }).stream.write(Buffer.concat([Buffer.from([0x30 | (qos << 1), ...remainingLength(body.length)]), body]))
}

/** A fixed header's remaining length: MQTT's variable-length integer, 7 bits a byte. */
export function remainingLength (n: number): number[] {
  const bytes: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    bytes.push(byte)
  } while (n > 0)
  return bytes
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

/** Subscribes and resolves with the SUBACK return codes as sent (MQTT.js turns any 0x80 into an error). */
export function subscribeCodes (client: MqttClient, topicList: string[]): Promise<number[]> {
  return new Promise((resolve) => {
    const onPacket = (packet: { cmd: string, granted?: number[] }) => {
      if (packet.cmd !== 'suback') return
      client.off('packetreceive', onPacket as never)
      resolve(packet.granted ?? [])
    }
    client.on('packetreceive', onPacket as never)
    client.subscribe(topicList, { qos: 1 }, () => {})
  })
}

/**
 * A real HTTP proxy between gateway and server that keeps every ingest batch it passed on,
 * so a test can see what the server received even where the server does not act on it yet.
 */
export interface RecordingProxy {
  url: string
  batches: IngestBatch[]
  /** While true, every request is answered 503 (the server "down") after being recorded. */
  down: boolean
  /** Ingest batches it matches are recorded, then held (not passed on) until `release`. */
  hold?: (batch: IngestBatch) => boolean
  /** Ingest batches it matches are recorded, then answered 400 (not passed on): a server refusing them. */
  refuse?: (batch: IngestBatch) => boolean
  /** How many requests are being held. */
  readonly holding: number
  /** Passes the held requests on. */
  release(): void
  close(): Promise<void>
}

export async function startRecordingProxy (target: string): Promise<RecordingProxy> {
  const batches: IngestBatch[] = []
  const held: Array<() => void> = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    if (req.method === 'POST' && req.url === '/v1/ingest') {
      const batch = JSON.parse(body.toString()) as IngestBatch
      batches.push(batch)
      if (proxy.hold?.(batch)) await new Promise<void>((resolve) => held.push(resolve))
      if (proxy.refuse?.(batch)) return res.writeHead(400, { 'content-type': 'application/json' }).end('{"statusCode":400,"code":"FST_ERR_VALIDATION","message":"refused by the test proxy"}')
    }
    if (proxy.down) return res.writeHead(503, { 'content-type': 'application/json' }).end('{"statusCode":503,"code":"DOWN","message":"down"}')
    try {
      const headers: Record<string, string> = {}
      for (const name of ['authorization', 'content-type']) if (req.headers[name]) headers[name] = String(req.headers[name])
      // A long poll the gateway gives up must not stay open upstream (it would hold the server's close).
      const gone = new AbortController()
      res.once('close', () => gone.abort())
      const answer = await fetch(target + req.url, { method: req.method, headers, body: body.length > 0 ? body : undefined, signal: gone.signal })
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await answer.arrayBuffer()))
    } catch {
      res.writeHead(502).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy: RecordingProxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    batches,
    down: false,
    get holding () { return held.length },
    release () { for (const pass of held.splice(0)) pass() },
    close: () => new Promise<void>((resolve) => { proxy.release(); server.closeAllConnections(); server.close(() => resolve()) })
  }
  return proxy
}
