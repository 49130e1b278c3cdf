/**
 * Server → devices. Long-polls the server's downlink queue and publishes each message into
 * the broker (QoS 1; persistent sessions keep it for a device that is away). The position
 * is saved after publishing, so a restart resumes without losing or repeating much.
 */
import type { Logger } from 'pino'
import type { DownlinkMessage } from '../protocol/index.js'
import type { ServerClient } from './server-client.js'
import type { GatewayMetrics } from './metrics.js'
import { retryForever } from './retry.js'
import { getMeta, setMeta, type StateDb } from './state-db.js'

const POSITION_KEY = 'downlink_position'
const WAIT_MS = 25_000

export class DownlinkRelay {
  private readonly stopping = new AbortController()
  private running?: Promise<void>

  constructor (
    private readonly db: StateDb,
    private readonly server: ServerClient,
    private readonly publish: (message: DownlinkMessage) => void,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger
  ) {}

  start (): void {
    this.running ??= this.loop()
  }

  async stop (): Promise<void> {
    this.stopping.abort()
    await this.running
  }

  private async loop (): Promise<void> {
    const signal = this.stopping.signal
    const saved = getMeta(this.db, POSITION_KEY)
    let position = saved === undefined ? undefined : Number(saved)
    while (!signal.aborted) {
      let answer: { head: number, messages: DownlinkMessage[] }
      try {
        answer = await retryForever('reading downlink', () => this.server.downlink(position, WAIT_MS, signal), signal, this.log)
      } catch {
        break
      }
      for (const message of answer.messages) {
        this.publish(message)
        this.metrics.downlinkPublished.inc({ kind: message.topic.split('/')[3] ?? 'other' })
      }
      if (answer.head !== position) {
        position = answer.head
        setMeta(this.db, POSITION_KEY, String(position))
      }
    }
  }
}
