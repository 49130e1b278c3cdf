/**
 * The live stream behind `GET /v1/stream` (server-sent events). Every alert, device and report
 * change on the bus becomes a numbered entry; the last entries are kept so a client that reconnects
 * with `Last-Event-ID` gets what it missed. One that fell further behind is told to reload
 * (`reset`), because a gap must never look like a quiet ward.
 *
 * Entry ids name this process's run (`{run}.{n}`): after a restart, or behind a load balancer
 * that moved the client to another server instance, a Last-Event-ID from elsewhere means
 * nothing here and the client is told to reload. (Plain counters from 1 made it look valid: a
 * client that last saw 5 got the new run's entries from 6 on and never its first five.)
 */
import { randomBytes } from 'node:crypto'
import type { Bus, BusEvents } from '../bus.js'

export interface StreamEntry {
  id: number
  event: 'alert' | 'device' | 'report'
  data: BusEvents['alert'][0] | BusEvents['device'][0] | BusEvents['report'][0]
  /** The entry as sent (its server-sent event lines): made once, the same text for every client. */
  text: string
}

export class LiveStream {
  /** This process's run (new at each `resetAll`), the prefix of every id it gives. */
  private run = newRun()
  private readonly entries: StreamEntry[] = []
  private nextId = 1
  private readonly listeners = new Set<(entry: StreamEntry) => void>()
  private readonly resetListeners = new Set<() => void>()

  constructor (bus: Bus, private readonly keep = 5000) {
    bus.on('alert', (data) => this.push('alert', data))
    bus.on('device', (data) => this.push('device', data))
    bus.on('report', (data) => this.push('report', data))
  }

  /** An entry's id as clients see it. */
  idOf (entry: Pick<StreamEntry, 'id'>): string {
    return `${this.run}.${entry.id}`
  }

  /** The newest entry's id (`{run}.0` before the first): resumed from, it gives every entry after. */
  headId (): string {
    return `${this.run}.${this.nextId - 1}`
  }

  /**
   * Entries after the one a client last saw (its Last-Event-ID), or null when it must reload:
   * the id is from another run or instance, or entries after it were already dropped.
   */
  since (lastEventId: string): StreamEntry[] | null {
    const [run, n] = lastEventId.split('.')
    const lastId = Number(n)
    if (run !== this.run || !/^\d+$/.test(n ?? '') || lastId >= this.nextId) return null
    const oldest = this.entries[0]?.id ?? this.nextId
    if (lastId < oldest - 1) return null
    return this.entries.filter((e) => e.id > lastId)
  }

  /** `onReset`: the client must reload its lists (see `resetAll`). */
  subscribe (listener: (entry: StreamEntry) => void, onReset: () => void): () => void {
    this.listeners.add(listener)
    this.resetListeners.add(onReset)
    return () => { this.listeners.delete(listener); this.resetListeners.delete(onReset) }
  }

  /**
   * Changes may have been missed (the bus lost touch with the other server instances): every
   * client reloads, and no id given before can be resumed from.
   */
  resetAll (): void {
    this.run = newRun()
    this.entries.length = 0
    for (const reset of this.resetListeners) reset()
  }

  private push (event: StreamEntry['event'], data: StreamEntry['data']): void {
    const id = this.nextId++
    const entry = { id, event, data, text: `id: ${this.idOf({ id })}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n` }
    this.entries.push(entry)
    if (this.entries.length > this.keep) this.entries.shift()
    for (const listener of this.listeners) listener(entry)
  }
}

function newRun (): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
}
