/**
 * The bus across server instances that share one PostgreSQL database (behind a load balancer).
 * Each instance publishes its bus events with NOTIFY and emits the other instances' on its own
 * bus, so an operator's console on one instance sees at once an alert raised, escalated or
 * acknowledged through another, and a gateway's downlink long poll wakes whichever instance
 * queued its message. Notifications are lost while the listening connection is down: when it is
 * back, `onGap` runs (the live stream tells its clients to reload).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from './db/database.js'
import type { Bus, BusEvents } from './bus.js'

const CHANNEL = 'sos_bus'
const EVENTS = ['alert', 'device', 'report', 'downlink'] as const
/**
 * NOTIFY takes at most 8000 bytes: events go in as many notifications as they need. Their JSON
 * travels as a string (what is signed), where every quote takes a backslash more.
 */
const MAX_PAYLOAD = 6000
/** At most one reload of every stream client this often, however many unsigned notifications come. */
const UNTRUSTED_RESET_MS = 2000

type BusEvent = { [K in keyof BusEvents]: [K, BusEvents[K][0]] }[keyof BusEvents]

export class BusBridge {
  private readonly instance = randomUUID()
  private listening?: { close(): Promise<void> }
  private pending: BusEvent[] = []
  /** Flushes run one after another: NOTIFYs racing on two pool connections could swap an alert's states. */
  private flushing = Promise.resolve()
  private relaying = false
  private troubleLoggedAt = -Infinity
  private untrustedAt = -Infinity
  private untrustedLoggedAt = -Infinity
  private untrustedLater?: NodeJS.Timeout
  private readonly forward: Array<() => void> = []
  /** What the instances sign with (migration 11), read at start. */
  private key = Buffer.alloc(0)

  constructor (
    private readonly db: Database & Required<Pick<Database, 'listen'>>,
    private readonly bus: Bus,
    private readonly onGap: () => void,
    private readonly log?: FastifyBaseLogger
  ) {}

  async start (): Promise<void> {
    const [row] = await this.db.query<{ value: string }>("SELECT value FROM sos_secrets WHERE name = 'bus'")
    if (!row) throw new Error('the bus key is missing (migration 11)')
    this.key = Buffer.from(row.value)
    this.listening = await this.db.listen(CHANNEL, (payload) => this.received(payload), (afterDrop) => {
      if (!afterDrop) return
      this.log?.warn('bus listener connected again: other instances\' changes may have been missed; live stream clients reload')
      this.onGap()
    }, (err) => {
      // Said now and then while it lasts: every second's retry is not news.
      if (Date.now() - this.troubleLoggedAt < 30_000) return
      this.troubleLoggedAt = Date.now()
      this.log?.error({ err: err.message }, 'bus listener lost: changes made through other server instances do not show here live until it is back')
    })
    for (const event of EVENTS) {
      const listener = (data: BusEvents[typeof event][0]) => { if (!this.relaying) this.queue([event, data] as BusEvent) }
      this.bus.on(event, listener)
      this.forward.push(() => this.bus.off(event, listener))
    }
  }

  async stop (): Promise<void> {
    clearTimeout(this.untrustedLater)
    for (const off of this.forward.splice(0)) off()
    await this.flushNext()
    await this.listening?.close()
  }

  /** Events of one tick go out together, in as few notifications as fit, after those before them. */
  private queue (event: BusEvent): void {
    this.pending.push(event)
    if (this.pending.length === 1) setImmediate(() => { void this.flushNext() })
  }

  private flushNext (): Promise<void> {
    this.flushing = this.flushing.then(() => this.flush())
    return this.flushing
  }

  private async flush (): Promise<void> {
    const events = this.pending
    this.pending = []
    let batch: BusEvent[] = []
    let size = 0
    const send = async () => {
      if (batch.length === 0) return
      const body = JSON.stringify(batch)
      const payload = JSON.stringify({ from: this.instance, body, mac: this.mac(this.instance, body) })
      batch = []
      size = 0
      // A pool connection that just broke is replaced: a second try usually goes through.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.db.query('SELECT pg_notify($1, $2)', [CHANNEL, payload])
          return
        } catch (err) {
          if (attempt < 3) { await new Promise((resolve) => setTimeout(resolve, 100)); continue }
          this.log?.error({ err: (err as Error).message }, 'bus events not sent to the other instances: their live streams miss them until they reload')
          return
        }
      }
    }
    for (const event of events) {
      const length = Buffer.byteLength(JSON.stringify(event))
      if (size + length > MAX_PAYLOAD) await send()
      batch.push(event)
      size += length
    }
    await send()
  }

  /**
   * Stream clients reload at once, then at most once a window however many come; one that came
   * within the window gets its reload at the window's end (a change an older instance told of
   * then must not wait for some later reload).
   */
  private untrusted (): void {
    const wait = this.untrustedAt + UNTRUSTED_RESET_MS - Date.now()
    if (wait > 0) {
      this.untrustedLater ??= setTimeout(() => { this.untrustedLater = undefined; this.untrusted() }, wait)
      return
    }
    this.untrustedAt = Date.now()
    if (Date.now() - this.untrustedLoggedAt > 60_000) {
      this.untrustedLoggedAt = Date.now()
      this.log?.warn('a notification on the bus channel not signed by a server instance (forged, or an instance older than 0.3.11): not relayed; live stream clients reload')
    }
    this.onGap()
  }

  private mac (from: string, body: string): string {
    return createHmac('sha256', this.key).update(from).update('\n').update(body).digest('base64url')
  }

  /**
   * Anyone who can connect to the database can NOTIFY (a dashboard's login too), and an instance
   * of another version may send other shapes: a notification is checked before its events reach
   * the bus, and one that fails a listener is logged, never thrown (it would end the process, in
   * pg's handler). One that looks like an instance's but is not signed with the key (forged, or
   * from an instance older than 0.3.11) is not relayed: the stream clients reload instead, from
   * the database, so a change it may have told of is not missed and a forged one never shown.
   */
  private received (payload: string): void {
    let message: unknown
    try {
      message = JSON.parse(payload)
    } catch {
      return
    }
    const { from, body, mac, events: unsigned } = (message ?? {}) as { from?: unknown, body?: unknown, mac?: unknown, events?: unknown }
    if (typeof from !== 'string' || from === this.instance) return
    if (typeof body !== 'string' || typeof mac !== 'string' || !sameText(mac, this.mac(from, body))) {
      if (typeof body === 'string' || Array.isArray(unsigned)) this.untrusted()
      return
    }
    let events: unknown
    try {
      events = JSON.parse(body)
    } catch {
      return
    }
    if (!Array.isArray(events)) return
    for (const entry of events) {
      if (!isBusEvent(entry)) continue
      this.relaying = true
      try {
        (this.bus.emit as (name: string, data: unknown) => boolean)(entry[0], entry[1])
      } catch (err) {
        this.log?.error({ err: (err as Error).message, event: entry[0] }, 'a relayed bus event failed a listener')
      } finally {
        this.relaying = false
      }
    }
  }
}

function sameText (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** `[name, data]` with a name this bus carries and data an object with the field its listeners read. */
function isBusEvent (entry: unknown): entry is BusEvent {
  if (!Array.isArray(entry) || entry.length !== 2) return false
  const [name, data] = entry as [unknown, unknown]
  if (typeof name !== 'string' || !(EVENTS as readonly string[]).includes(name) || typeof data !== 'object' || data === null) return false
  const fields = data as Record<string, unknown>
  switch (name) {
    case 'downlink': return typeof fields.head === 'number'
    case 'alert': return typeof fields.alertId === 'string' && typeof fields.deviceId === 'string' && typeof fields.state === 'string' && typeof fields.kind === 'string'
    case 'device': return typeof fields.deviceId === 'string' && typeof fields.change === 'string'
    default: return typeof fields.reportId === 'string' && typeof fields.deviceId === 'string' && typeof fields.state === 'string'
  }
}
