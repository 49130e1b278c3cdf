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
import { getMeta, metaWrite, type StateDb } from './state-db.js'
import type { StateWriter } from './state-writer.js'

const POSITION_KEY = 'downlink_position'

export class DownlinkRelay {
  private readonly stopping = new AbortController()
  private running?: Promise<void>
  /** Read at start-up; saved through the writer after that. */
  private readonly savedPosition: number | undefined
  private readonly retained: DownlinkMessage[]

  constructor (
    db: StateDb,
    private readonly writer: StateWriter,
    private readonly server: ServerClient,
    private readonly publish: (message: DownlinkMessage) => void,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    private readonly waitMs = 25_000
  ) {
    const saved = getMeta(db, POSITION_KEY)
    this.savedPosition = saved === undefined ? undefined : Number(saved)
    this.retained = (db.prepare('SELECT body FROM retained').all() as Array<{ body: string }>).map((row) => JSON.parse(row.body) as DownlinkMessage)
  }

  /**
   * Republishes the retained messages (announcements) relayed before a restart: the broker
   * keeps retained messages in memory, and a kiosk that reconnects after a gateway restart
   * must still find the announcement it missed.
   */
  restoreRetained (): number {
    for (const message of this.retained) this.publish(message)
    return this.retained.length
  }

  start (): void {
    this.running ??= this.loop()
  }

  async stop (): Promise<void> {
    this.stopping.abort()
    await this.running
  }

  private async loop (): Promise<void> {
    const signal = this.stopping.signal
    let position = this.savedPosition
    while (!signal.aborted) {
      let answer: { head: number, messages: DownlinkMessage[] }
      try {
        answer = await retryForever('reading downlink', () => this.server.downlink(position, this.waitMs, signal), signal, this.log)
      } catch {
        break
      }
      for (const message of answer.messages) {
        if (message.retain) this.keepRetained(message)
        this.publish(message)
        this.metrics.downlinkPublished.inc({ kind: downlinkKind(message.topic) })
      }
      if (answer.head !== position) {
        position = answer.head
        this.writer.write(metaWrite(POSITION_KEY, String(position)))
      }
    }
  }

  private keepRetained (message: DownlinkMessage): void {
    // An empty retained payload clears the topic (MQTT 3.1.1 §3.3.1.3).
    const empty = message.payload === null || message.payload === undefined || message.payload === ''
    if (empty) this.writer.write({ sql: 'DELETE FROM retained WHERE topic = ?', params: [message.topic] })
    else this.writer.write({ sql: 'INSERT INTO retained (topic, body) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET body = excluded.body', params: [message.topic, JSON.stringify(message)] })
  }
}

/** A small label set: `ack`, `cmd`, `announce` (zones are many; they stay out of labels). */
function downlinkKind (topic: string): string {
  const parts = topic.split('/')
  if (parts[2] === 'announce') return 'announce'
  return parts[3] === 'ack' || parts[3] === 'cmd' ? parts[3] : 'other'
}
