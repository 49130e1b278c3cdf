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

export class DownlinkRelay {
  private readonly stopping = new AbortController()
  private running?: Promise<void>

  constructor (
    private readonly db: StateDb,
    private readonly server: ServerClient,
    private readonly publish: (message: DownlinkMessage) => void,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    private readonly waitMs = 25_000
  ) {
    db.exec('CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, body TEXT NOT NULL)')
  }

  /**
   * Republishes the retained messages (announcements) relayed before a restart: the broker
   * keeps retained messages in memory, and a kiosk that reconnects after a gateway restart
   * must still find the announcement it missed.
   */
  restoreRetained (): number {
    const rows = this.db.prepare('SELECT body FROM retained').all() as Array<{ body: string }>
    for (const row of rows) this.publish(JSON.parse(row.body) as DownlinkMessage)
    return rows.length
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
    const saved = getMeta(this.db, POSITION_KEY)
    let position = saved === undefined ? undefined : Number(saved)
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
        setMeta(this.db, POSITION_KEY, String(position))
      }
    }
  }

  private keepRetained (message: DownlinkMessage): void {
    // An empty retained payload clears the topic (MQTT 3.1.1 §3.3.1.3).
    const empty = message.payload === null || message.payload === undefined || message.payload === ''
    if (empty) this.db.prepare('DELETE FROM retained WHERE topic = ?').run(message.topic)
    else this.db.prepare('INSERT INTO retained (topic, body) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET body = excluded.body').run(message.topic, JSON.stringify(message))
  }
}

/** A small label set: `ack`, `cmd`, `announce` (zones are many; they stay out of labels). */
function downlinkKind (topic: string): string {
  const parts = topic.split('/')
  if (parts[2] === 'announce') return 'announce'
  return parts[3] === 'ack' || parts[3] === 'cmd' ? parts[3] : 'other'
}
