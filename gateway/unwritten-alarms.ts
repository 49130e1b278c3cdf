/**
 * Alarms the outbox has not managed to write in time (its disk hangs: pipeline/persist.ts),
 * sent to the server from memory beside the forwarder's lanes and retried until the server
 * answers, or until the alarm's own signal aborts (the write ended after all: the lane sends
 * it). A device's alarms sent this way go one after another, in order, so a cancel never
 * overtakes its press; a QoS 1 redelivery during the stall joins its first copy. The device
 * hears the server's answer at once; when the outbox copy is confirmed later (`duplicate`),
 * the forwarder asks `answeredBefore` and does not tell it again.
 */
import type { Logger } from 'pino'
import type { GatewayEvent, IngestResult } from '../protocol/index.js'
import type { GatewayMetrics } from './metrics.js'
import type { OutboxEntry } from './outbox/outbox.js'
import { LogBudget } from '../server/log-budget.js'
import { retryForever } from './retry.js'

export interface UnwrittenAlarmsDeps {
  /** One request to the server with this entry alone (the alarm lane's connections). */
  post: (entry: OutboxEntry, signal: AbortSignal) => Promise<IngestResult[]>
  /** Tells the device the server's answer, as for any confirmed entry. */
  acknowledge: (entries: OutboxEntry[], results: IngestResult[]) => void
  /** How long the outbox's write in flight has waited, for the log line. */
  writeWaitMs: () => number
  /** The forwarder stopping: what is on its way stays for the outbox to send after restart. */
  stopping: AbortSignal
  metrics: GatewayMetrics
  log: Logger
}

export class UnwrittenAlarms {
  /** Answered from memory; the outbox copy is not answered again. Bounded (a copy whose write failed never comes). */
  private readonly answered = new Set<string>()
  /** Per device, its last alarm on its way: the next waits for it. */
  private readonly lastByDevice = new Map<string, Promise<void>>()
  private readonly inFlight = new Map<string, Promise<void>>()
  private readonly lines: LogBudget

  constructor (private readonly deps: UnwrittenAlarmsDeps) {
    this.lines = new LogBudget(5, 10_000, (_, lines) => deps.log.warn({ notLogged: lines }, 'more alarms sent to the server before the outbox could write them, not logged one by one'))
  }

  /** Resolves once the server has answered for the alarm; rejects only when aborted. */
  send (record: GatewayEvent, signal: AbortSignal): Promise<void> {
    // A redelivery joins its first copy; a different event under a reused id (another type or
    // device clock: protocol/reused-ids.ts) does not.
    const key = `${record.eventId}\u0000${record.event.type}\u0000${record.event.ts ?? ''}`
    const joined = this.inFlight.get(key)
    if (joined) return joined
    const { deviceId } = record
    const before = this.lastByDevice.get(deviceId) ?? Promise.resolve()
    const sending = before.catch(() => {}).then(() => this.sendOne(record, signal))
    this.inFlight.set(key, sending)
    this.lastByDevice.set(deviceId, sending)
    const settled = () => {
      if (this.inFlight.get(key) === sending) this.inFlight.delete(key)
      if (this.lastByDevice.get(deviceId) === sending) this.lastByDevice.delete(deviceId)
    }
    sending.then(settled, settled)
    return sending
  }

  /** True, once, for an alarm the server already answered from memory: its outbox copy's answer is not told again. */
  answeredBefore (eventId: string): boolean {
    return this.answered.size > 0 && this.answered.delete(eventId)
  }

  private async sendOne (record: GatewayEvent, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    const { metrics, log } = this.deps
    // Id 0: no outbox row; the forwarder answers it whatever `answeredBefore` says.
    const entry: OutboxEntry = { id: 0, eventId: record.eventId, deviceId: record.deviceId, type: record.event.type, seq: record.event.seq, receivedAt: record.receivedAt, body: JSON.stringify(record) }
    const until = AbortSignal.any([signal, this.deps.stopping])
    metrics.alarmsSentUnwritten.inc()
    if (this.lines.allows('unwritten')) log.warn({ deviceId: record.deviceId, seq: record.event.seq, writeWaitMs: Math.round(this.deps.writeWaitMs()) }, 'outbox write is taking too long: alarm sent to the server from memory')
    const results = await retryForever('sending an alarm the outbox could not write yet', () => this.deps.post(entry, until), until, log, () => metrics.forwardFailures.inc())
    this.deps.acknowledge([entry], results)
    this.answered.add(record.eventId)
    if (this.answered.size > 10_000) this.answered.delete(this.answered.values().next().value!)
  }
}
