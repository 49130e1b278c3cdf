/**
 * Outbox → server, in two lanes that run side by side:
 *  - alarms (press, hold, cancel, tamper, report) with presence changes: sent at once, up to
 *    `parallel` requests in flight, so an alarm never queues behind routine traffic, nor behind
 *    another device's alarm still on its way;
 *  - routine events (heartbeats, tests, battery, power) with dead letters: a round at most every
 *    25 ms, up to `parallel` batches in flight, split by device.
 * Within a lane each device's events arrive in order: a device has at most one request in
 * flight per lane. A batch also carries the gateway's own health. An entry is forgotten only
 * after the server confirmed it; a batch interrupted by a crash is sent again after restart and
 * the server stores it once (idempotent by event id). After confirmation the devices hear
 * `received` (or `rejected`).
 */
import type { Logger } from 'pino'
import { topics, type Ack, type DeadLetter, type IngestBatch, type IngestResult, type PresenceChange } from '../protocol/index.js'
import type { DeadLetters } from './dead-letters.js'
import type { GatewayMetrics } from './metrics.js'
import type { Lane, Outbox, OutboxEntry } from './outbox/outbox.js'
import type { PresenceLog } from './presence-log.js'
import { ServerError, type ServerClient } from './server-client.js'
import { pause, retryForever, settlesWithin } from './retry.js'
import { UnwrittenAlarms } from './unwritten-alarms.js'
import { ownPresence, splitByDevice } from './forward-batches.js'

/**
 * States a device should hear again when its event joins an alert already in them, or resends
 * the one that ended it (`cancelled`). A cancel stored now (or a press an earlier cancel ends at
 * once) is told `cancelled` by the server itself, the alert's own ack through the downlink:
 * told here too, the shop owner's device heard it twice (reviews 71 and 72).
 */
const STILL_TRUE_STATES = new Set(['acknowledged', 'dispatched', 'cancelled'])
const toldAgain = (result: IngestResult | undefined): result is IngestResult & { alertState: string } =>
  result?.alertState !== undefined && STILL_TRUE_STATES.has(result.alertState) && !(result.alertState === 'cancelled' && result.status === 'stored')
const SIDE_BATCH = 500
/**
 * Presence changes looked at for riding with alarm events (all of SIDE_BATCH when there are
 * none); only those of the devices whose alarms they ride with go.
 */
const PRESENCE_WITH_ALARMS = 50

export interface ForwarderSources {
  outbox: Outbox
  presence: PresenceLog
  deadLetters: DeadLetters
}

interface SideItems {
  presence: Array<{ id: number, change: PresenceChange }>
  deadLetters: Array<{ id: number, letter: DeadLetter }>
}

const NO_SIDE_ITEMS: SideItems = { presence: [], deadLetters: [] }

export class Forwarder {
  private readonly stopping = new AbortController()
  private running?: Promise<unknown>
  /** Each lane's loop, asleep until something arrives for it. */
  private readonly sleepers: Record<Lane, Set<() => void>> = { alarm: new Set(), routine: new Set() }
  /**
   * Lanes to pause a second before their next round: their last confirmed events could not be
   * removed from the outbox, or a refused side list could not be settled (the server refusing
   * everything: without the pause, the lane would ask again at once, forever).
   */
  private readonly removeFailed = new Set<Lane>()
  /**
   * The alarm lane's requests on their way, how many of them hold each device's events or
   * presence changes (an entry in flight is known by its device: that device sends nothing
   * else meanwhile), and whether one carries presence changes.
   */
  private readonly alarmsInFlight = { requests: new Set<Promise<void>>(), devices: new Map<string, number>(), presence: false }
  /** Alarms sent from memory while the outbox's disk hangs (pipeline/persist.ts). */
  readonly unwritten: UnwrittenAlarms

  constructor (
    private readonly gatewayId: string,
    private readonly sources: ForwarderSources,
    private readonly server: ServerClient,
    private readonly sendToDevice: (topic: string, payload: Ack) => void,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
    private readonly options: { batchSize: number, intervalMs: number, parallel: number }
  ) {
    // Only the lane that got something wakes: at a thousand routine events a second, the alarm
    // lane stays asleep instead of asking the outbox a thousand times for nothing.
    sources.outbox.on('appended', (lanes) => { for (const lane of lanes) this.wake(lane) })
    sources.presence.on('appended', () => this.wake('alarm'))
    this.unwritten = new UnwrittenAlarms({
      post: async (entry, signal) => (await this.send('alarm', [entry], NO_SIDE_ITEMS, signal)).results,
      acknowledge: (entries, results) => this.acknowledge(entries, results),
      writeWaitMs: () => sources.outbox.writeWaitMs(),
      stopping: this.stopping.signal,
      metrics,
      log
    })
  }

  /** Called when a dead letter was queued (they travel in the routine lane). */
  readonly poke = (): void => this.wake('routine')

  private wake (lane: Lane): void {
    const sleepers = this.sleepers[lane]
    for (const wake of sleepers) wake()
    sleepers.clear()
  }

  start (): void {
    this.running ??= Promise.all([this.loop('alarm'), this.loop('routine')])
  }

  /** Gives the queues up to `drainMs` to empty, then stops; what is left is sent after restart. */
  async stop (drainMs = 3000): Promise<void> {
    const deadline = Date.now() + drainMs
    while (this.pendingWork() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    this.stopping.abort()
    this.wake('alarm')
    this.wake('routine')
    // Aborted, they end at once; what they carried stays queued for the next start. Bounded
    // all the same: a read of the outbox waiting behind a write on a hung disk never ends.
    await settlesWithin(Promise.all([this.running, ...this.alarmsInFlight.requests]), 2000)
    // Said, so whoever stopped it (the server down, say) knows nothing was dropped, and what waits.
    const left = this.sources.outbox.depth()
    if (left > 0) this.log.warn({ events: left }, 'stopped with events not yet confirmed by the server: they are kept in the outbox and sent after the next start')
  }

  private pendingWork (): boolean {
    return this.sources.outbox.depth() > 0 || this.sources.presence.peek(1).length > 0 || this.sources.deadLetters.peekUnforwarded(1).length > 0
  }

  private async loop (lane: Lane): Promise<void> {
    const signal = this.stopping.signal
    while (!signal.aborted) {
      const started = Date.now()
      try {
        if (lane === 'alarm') {
          await this.sendAlarms(signal)
          continue
        }
        await this.sendRoutine(signal)
        // Routine events go at most once per interval (the first after a quiet spell at once):
        // at a thousand a second that is some forty requests (and server transactions) instead
        // of one per round trip, which kept the server and the database busy for no one's
        // benefit. Alarms never wait.
        const rest = this.options.intervalMs - (Date.now() - started)
        if (rest > 0) await pause(rest, signal)
      } catch (err) {
        // A failing outbox read (an I/O error) must not end forwarding: try again shortly.
        this.log.error({ err: (err as Error).message, lane }, 'forwarding round failed; trying again in a second')
        await pause(1000, signal)
      }
    }
  }

  /**
   * Starts a request with the alarms (and presence changes) that can go now, or sleeps until
   * some can: woken by a new alarm, or by a request ending (its devices may send again).
   * Alarms of a device with a request in flight wait for it, so each device's stay in order;
   * those of other devices go at once, beside it.
   */
  private async sendAlarms (signal: AbortSignal): Promise<void> {
    const { outbox, presence } = this.sources
    const flight = this.alarmsInFlight
    const { batchSize, parallel } = this.options
    if (this.removeFailed.delete('alarm')) await pause(1000, signal)
    // Armed before looking, so an append while we look is not missed.
    const woken = new Promise<void>((resolve) => { this.sleepers.alarm.add(resolve) })
    let events: OutboxEntry[] = []
    if (flight.requests.size < parallel) {
      // Past the devices in flight, however many alarms they have waiting: a device flooding
      // presses must not hide another's press behind its backlog. (Requests only end while we
      // look, so the devices still in flight are among those skipped.)
      events = await outbox.peek('alarm', batchSize, new Set(flight.devices.keys()))
    }
    const side: SideItems = {
      // A storm of presence changes must not make the alarms beside them wait long. With alarms,
      // only their own devices' changes ride: another device's would hold that device's next
      // alarm behind these (a button that connects when pressed: its `online` rode with another
      // device's request held by a slow PIN check, and its press waited for it). The others go
      // in a round with no alarms to send.
      presence: flight.presence || flight.requests.size >= parallel
        ? []
        : events.length > 0 ? ownPresence(presence.peek(PRESENCE_WITH_ALARMS), events) : presence.peek(SIDE_BATCH),
      deadLetters: []
    }
    this.updateOutboxGauges()
    if (events.length === 0 && side.presence.length === 0) {
      await woken
      return
    }
    // A device's later alarms wait for these events and for its presence change (online, say).
    const presenceDevices = new Set(side.presence.map((c) => c.change.deviceId))
    let held = [...new Set([...events.map((e) => e.deviceId), ...presenceDevices])]
    for (const id of held) flight.devices.set(id, (flight.devices.get(id) ?? 0) + 1)
    const release = (ids: string[]) => {
      for (const id of ids) {
        const left = flight.devices.get(id)! - 1
        if (left > 0) flight.devices.set(id, left)
        else flight.devices.delete(id)
      }
    }
    if (side.presence.length > 0) flight.presence = true
    const request: Promise<void> = retryForever('forwarding alarm events to the server', () => this.send('alarm', events, side, signal),
      signal, this.log, () => this.metrics.forwardFailures.inc())
      .then(async ({ results, sideRefused }) => {
        this.acknowledge(events, results)
        this.confirmed('alarm', events, sideRefused ? NO_SIDE_ITEMS : side)
        if (!sideRefused) return
        // The slow path, after the devices heard `received`: those that had only events here
        // may send their next alarms meanwhile.
        release(held.filter((id) => !presenceDevices.has(id)))
        held = held.filter((id) => presenceDevices.has(id))
        this.wake('alarm')
        this.confirmedSide(await this.sendApart(side, 'alarm', signal))
      }, () => {}) // stopped: they stay queued for the next start
      .catch((err: Error) => this.log.error({ err: err.message }, 'confirmed alarms could not be answered or forgotten; they will be sent again'))
      .finally(() => {
        release(held)
        if (side.presence.length > 0) flight.presence = false
        flight.requests.delete(request)
        this.wake('alarm')
      })
    flight.requests.add(request)
  }

  /** Sends what the routine lane has, with the dead letters (or sleeps until it has something). */
  private async sendRoutine (signal: AbortSignal): Promise<void> {
    const { outbox, deadLetters } = this.sources
    const { batchSize, parallel } = this.options
    const lane = 'routine'
    if (this.removeFailed.delete(lane)) {
      // What we sent could not be forgotten (disk full?): wait before sending it all again.
      await pause(1000, signal)
    }
    // Armed before looking, so an append while we look is not missed.
    const woken = new Promise<void>((resolve) => { this.sleepers[lane].add(resolve) })
    const events = await outbox.peek(lane, batchSize * parallel)
    const side: SideItems = { presence: [], deadLetters: deadLetters.peekUnforwarded(SIDE_BATCH) }
    this.updateOutboxGauges()
    if (events.length === 0 && side.deadLetters.length === 0) {
      await woken
      return
    }
    // Several requests at once when there is much to send, so the server and the database work
    // side by side; each device's events stay in one of them, in order.
    const groups = splitByDevice(events, Math.min(parallel, Math.ceil(events.length / batchSize)), batchSize)
    const sent = await Promise.allSettled(groups.map((group, i) => retryForever(`forwarding ${lane} events to the server`,
      // The side lists ride with the first request.
      () => this.send(lane, group, i === 0 ? side : NO_SIDE_ITEMS, signal),
      signal, this.log, () => this.metrics.forwardFailures.inc())
      // Devices hear `received` as soon as their request is confirmed.
      .then(({ results, sideRefused }) => { this.acknowledge(group, results); return { group, sideRefused } })))
    // A stopped group stays queued; the side lists went with the first.
    const done = sent.flatMap((outcome) => outcome.status === 'fulfilled' ? outcome.value.group : [])
    const first = sent[0]?.status === 'fulfilled' ? sent[0].value : undefined
    this.confirmed(lane, done, first && !first.sideRefused ? side : NO_SIDE_ITEMS)
    if (first?.sideRefused) this.confirmedSide(await this.sendApart(side, lane, signal))
  }

  /** After the server confirmed: forget what it stored (events, side lists), count it. */
  private confirmed (lane: Lane, done: OutboxEntry[], side: SideItems): void {
    this.confirmedSide({ taken: side, refused: NO_SIDE_ITEMS })
    this.metrics.forwarded.inc({ kind: 'event' }, done.length)
    const now = Date.now()
    for (const e of done) this.metrics.forwardLatency.observe((now - e.receivedAt) / 1000)
    // Not awaited: the outbox runs requests in order, so the next peek already sees them gone.
    // Should forgetting fail, those events are sent again (the server stores them once), after a pause.
    this.sources.outbox.remove(lane, done.map((entry) => entry.id)).catch((err: Error) => {
      this.removeFailed.add(lane)
      this.log.warn({ err: err.message }, 'confirmed events could not be removed from the outbox; they will be sent again')
    })
    this.updateOutboxGauges()
  }

  /** Forgets the side items the server took or refused for good; counts each kind. */
  private confirmedSide ({ taken, refused }: { taken: SideItems, refused: SideItems }): void {
    const presence = [...taken.presence, ...refused.presence]
    const deadLetters = [...taken.deadLetters, ...refused.deadLetters]
    if (presence.length > 0) this.sources.presence.remove(presence.map((c) => c.id))
    if (deadLetters.length > 0) this.sources.deadLetters.markForwarded(deadLetters.map((l) => l.id))
    if (taken.presence.length > 0) this.metrics.forwarded.inc({ kind: 'presence' }, taken.presence.length)
    if (taken.deadLetters.length > 0) this.metrics.forwarded.inc({ kind: 'dead_letter' }, taken.deadLetters.length)
    if (refused.presence.length > 0) this.metrics.forwardRefused.inc({ kind: 'presence' }, refused.presence.length)
    if (refused.deadLetters.length > 0) this.metrics.forwardRefused.inc({ kind: 'dead_letter' }, refused.deadLetters.length)
  }

  /**
   * One POST. A server that refuses the side lists as malformed (400: say an older server, or an
   * item it cannot take) must not block the events behind them: they go alone, and the caller
   * sends the side lists apart afterwards (`sendApart`), once the devices heard `received`.
   */
  private async send (lane: Lane, events: OutboxEntry[], side: SideItems, signal: AbortSignal): Promise<{ results: IngestResult[], sideRefused: boolean }> {
    const presence = side.presence.map((c) => c.change)
    const deadLetters = side.deadLetters.map((l) => l.letter)
    const eventsJson = events.map((e) => e.body)
    const rest: Omit<IngestBatch, 'events'> = {
      ...(presence.length > 0 ? { presence } : {}),
      ...(deadLetters.length > 0 ? { deadLetters } : {}),
      gateway: this.health()
    }
    try {
      return { results: await this.server.ingest(eventsJson, rest, lane, signal), sideRefused: false }
    } catch (err) {
      if (!isRefusal(err) || (presence.length === 0 && deadLetters.length === 0)) throw err
      this.log.error({ err: (err as Error).message, presence: presence.length, deadLetters: deadLetters.length }, 'server refused a batch with presence changes or dead letters; sending the events alone, then those apart')
      return { results: events.length === 0 ? [] : await this.server.ingest(eventsJson, {}, lane, signal), sideRefused: true }
    }
  }

  /**
   * Side items the server refused in a batch, sent without events and halved until what it
   * refuses is a single item, which is logged and let go: one bad item never costs the others (a
   * presence change lost is an outage unreported). Only once the server has taken an empty
   * batch: one that answers 400 to everything (a proxy gone wrong) lets nothing go. Any other
   * failure stops here; what was not settled stays queued for the next round.
   */
  private async sendApart (side: SideItems, lane: Lane, signal: AbortSignal): Promise<{ taken: SideItems, refused: SideItems }> {
    const taken: SideItems = { presence: [], deadLetters: [] }
    const refused: SideItems = { presence: [], deadLetters: [] }
    const halve = async <K extends keyof SideItems>(kind: K, items: SideItems[K]): Promise<void> => {
      if (items.length === 0) return
      const body = kind === 'presence'
        ? { presence: (items as SideItems['presence']).map((c) => c.change) }
        : { deadLetters: (items as SideItems['deadLetters']).map((l) => l.letter) }
      try {
        await this.server.ingest([], body, lane, signal)
        ;(taken[kind] as unknown[]).push(...items)
      } catch (err) {
        if (!isRefusal(err)) throw err
        if (items.length === 1) {
          this.log.error({ err: (err as Error).message, item: body }, 'server refused this item; letting it go')
          ;(refused[kind] as unknown[]).push(...items)
          return
        }
        const half = Math.ceil(items.length / 2)
        await halve(kind, items.slice(0, half) as SideItems[K])
        await halve(kind, items.slice(half) as SideItems[K])
      }
    }
    try {
      await this.server.ingest([], {}, lane, signal)
      await halve('presence', side.presence)
      await halve('deadLetters', side.deadLetters)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'presence changes or dead letters not settled; they are sent again after a pause')
      this.removeFailed.add(lane)
    }
    return { taken, refused }
  }

  private health (): NonNullable<IngestBatch['gateway']> {
    const { outbox } = this.sources
    const oldest = outbox.oldestReceivedAt()
    return {
      gatewayId: this.gatewayId,
      outboxDepth: outbox.depth(),
      outboxFull: outbox.full,
      ...(oldest === undefined ? {} : { outboxOldestAgeMs: Math.max(0, Date.now() - oldest) })
    }
  }

  private updateOutboxGauges (): void {
    const oldest = this.sources.outbox.oldestReceivedAt()
    this.metrics.outboxDepth.set(this.sources.outbox.depth())
    this.metrics.outboxOldestAge.set(oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) / 1000)
  }

  /** `received` for each stored event; heartbeats are covered by their PUBACK alone. */
  private acknowledge (events: OutboxEntry[], results: IngestResult[]): void {
    events.forEach((e, i) => {
      if (e.type === 'heartbeat') return
      // The outbox's copy of an alarm answered from memory (id 0): the device heard it then.
      if (e.id !== 0 && this.unwritten.answeredBefore(e.eventId)) return
      const result = results[i]
      const topic = topics.ack(e.deviceId)
      const seq = e.seq
      // A silent alarm (shop counter) shows the state but must never sound it.
      const silent = result?.silent ? { silent: true as const } : {}
      if (result?.ackState === 'rejected') {
        this.sendToDevice(topic, { seq, state: 'rejected', reason: result.reason ?? 'refused by the server', ...silent })
        return
      }
      const alertId = result?.alertId
      const ticketId = result?.ticketId
      this.sendToDevice(topic, { seq, state: 'received', ...(alertId ? { alertId } : {}), ...(ticketId ? { ticketId } : {}), ...silent })
      if (toldAgain(result)) {
        this.sendToDevice(topic, { seq, state: result.alertState as Ack['state'], ...(alertId ? { alertId } : {}), ...silent })
      }
    })
  }
}

/** The server refused the request as malformed: sending it again would not help. */
function isRefusal (err: unknown): boolean {
  return err instanceof ServerError && err.status === 400
}
