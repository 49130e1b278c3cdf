/**
 * Outbox → server. One batch in flight at a time, oldest first, so each device's events
 * arrive in order. An entry is forgotten only after the server confirmed the batch; a batch
 * interrupted by a crash is sent again after restart and the server stores it once
 * (idempotent by event id). After confirmation the devices hear `received`.
 */
import type { Logger } from 'pino'
import { topics, type Ack, type GatewayEvent, type IngestResult } from '../protocol/index.js'
import type { GatewayMetrics } from './metrics.js'
import type { Outbox } from './outbox.js'
import type { ServerClient } from './server-client.js'
import { retryForever } from './retry.js'

/** States a device should hear again when a new press joins an alert already in them. */
const STILL_TRUE_STATES = new Set(['acknowledged', 'dispatched'])

export class Forwarder {
  private readonly stopping = new AbortController()
  private running?: Promise<void>
  private wake?: () => void

  constructor (
    private readonly outbox: Outbox,
    private readonly server: ServerClient,
    private readonly sendToDevice: (topic: string, payload: Ack) => void,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    private readonly batchSize: number
  ) {
    outbox.on('appended', () => this.wake?.())
  }

  start (): void {
    this.running ??= this.loop()
  }

  /** Gives the outbox up to `drainMs` to empty, then stops; what is left is sent after restart. */
  async stop (drainMs = 3000): Promise<void> {
    const deadline = Date.now() + drainMs
    while (this.outbox.depth() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    this.stopping.abort()
    this.wake?.()
    await this.running
  }

  private async loop (): Promise<void> {
    const signal = this.stopping.signal
    while (!signal.aborted) {
      const batch = this.outbox.peek(this.batchSize)
      this.metrics.outboxDepth.set(batch.length < this.batchSize ? batch.length : this.outbox.depth())
      if (batch.length === 0) {
        await new Promise<void>((resolve) => { this.wake = resolve })
        this.wake = undefined
        continue
      }
      const events = batch.map((entry) => entry.event)
      let results: IngestResult[]
      try {
        results = await retryForever('forwarding to the server', () => this.server.ingest(events, signal), signal, this.log,
          () => this.metrics.forwardFailures.inc())
      } catch {
        break // stopped; the batch stays in the outbox
      }
      this.outbox.remove(batch.map((entry) => entry.id))
      const now = Date.now()
      for (const e of events) this.metrics.forwardLatency.observe((now - e.receivedAt) / 1000)
      this.acknowledge(events, results)
    }
  }

  /** `received` for each stored event; heartbeats are covered by their PUBACK alone. */
  private acknowledge (events: GatewayEvent[], results: IngestResult[]): void {
    events.forEach((e, i) => {
      if (e.event.type === 'heartbeat') return
      const result = results[i]
      const topic = topics.ack(e.deviceId)
      const alertId = result?.alertId
      this.sendToDevice(topic, { seq: e.event.seq, state: 'received', ...(alertId ? { alertId } : {}) })
      if (result?.alertState && STILL_TRUE_STATES.has(result.alertState)) {
        this.sendToDevice(topic, { seq: e.event.seq, state: result.alertState as Ack['state'], ...(alertId ? { alertId } : {}) })
      }
    })
  }
}
