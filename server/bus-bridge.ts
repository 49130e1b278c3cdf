/**
 * The bus across server instances that share one PostgreSQL database (behind a load balancer).
 * Each instance publishes its bus events with NOTIFY and emits the other instances' on its own
 * bus, so an operator's console on one instance sees at once an alert raised, escalated or
 * acknowledged through another, and a gateway's downlink long poll wakes whichever instance
 * queued its message. Notifications are lost while the listening connection is down: when it is
 * back, `onGap` runs (the live stream tells its clients to reload).
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from './db/database.js'
import type { Bus, BusEvents } from './bus.js'

const CHANNEL = 'sos_bus'
const EVENTS = ['alert', 'device', 'report', 'downlink'] as const
/** NOTIFY takes at most 8000 bytes: events go in as many notifications as they need. */
const MAX_PAYLOAD = 7000

type BusEvent = { [K in keyof BusEvents]: [K, BusEvents[K][0]] }[keyof BusEvents]

export class BusBridge {
  private readonly instance = randomUUID()
  private listening?: { close(): Promise<void> }
  private pending: BusEvent[] = []
  private relaying = false
  private readonly forward: Array<() => void> = []

  constructor (
    private readonly db: Database & Required<Pick<Database, 'listen'>>,
    private readonly bus: Bus,
    private readonly onGap: () => void,
    private readonly log?: FastifyBaseLogger
  ) {}

  async start (): Promise<void> {
    this.listening = await this.db.listen(CHANNEL, (payload) => this.received(payload), (afterDrop) => {
      if (!afterDrop) return
      this.log?.warn('bus listener connected again: other instances\' changes may have been missed; live stream clients reload')
      this.onGap()
    })
    for (const event of EVENTS) {
      const listener = (data: BusEvents[typeof event][0]) => { if (!this.relaying) this.queue([event, data] as BusEvent) }
      this.bus.on(event, listener)
      this.forward.push(() => this.bus.off(event, listener))
    }
  }

  async stop (): Promise<void> {
    for (const off of this.forward.splice(0)) off()
    await this.flush()
    await this.listening?.close()
  }

  /** Events of one tick go out together, in as few notifications as fit. */
  private queue (event: BusEvent): void {
    this.pending.push(event)
    if (this.pending.length === 1) setImmediate(() => { void this.flush() })
  }

  private async flush (): Promise<void> {
    const events = this.pending
    this.pending = []
    let batch: BusEvent[] = []
    let size = 0
    const send = async () => {
      if (batch.length === 0) return
      const payload = JSON.stringify({ from: this.instance, events: batch })
      batch = []
      size = 0
      try {
        await this.db.query('SELECT pg_notify($1, $2)', [CHANNEL, payload])
      } catch (err) {
        // The other instances' streams miss it; their own reload on reconnect covers a gap there.
        this.log?.warn({ err: (err as Error).message }, 'bus event not sent to the other instances')
      }
    }
    for (const event of events) {
      const length = JSON.stringify(event).length
      if (size + length > MAX_PAYLOAD) await send()
      batch.push(event)
      size += length
    }
    await send()
  }

  private received (payload: string): void {
    let message: { from?: string, events?: BusEvent[] }
    try {
      message = JSON.parse(payload)
    } catch {
      return
    }
    if (message.from === this.instance || !Array.isArray(message.events)) return
    this.relaying = true
    try {
      for (const [event, data] of message.events) {
        if ((EVENTS as readonly string[]).includes(event)) (this.bus.emit as (name: string, data: unknown) => boolean)(event, data)
      }
    } finally {
      this.relaying = false
    }
  }
}
