/**
 * The live stream behind `GET /v1/stream` (server-sent events). Every alert, device and report
 * change on the bus becomes a numbered entry; the last entries are kept so a client that reconnects
 * with `Last-Event-ID` gets what it missed. One that fell further behind is told to reload
 * (`reset`), because a gap must never look like a quiet ward.
 */
import type { Bus, BusEvents } from '../bus.js'

export interface StreamEntry {
  id: number
  event: 'alert' | 'device' | 'report'
  data: BusEvents['alert'][0] | BusEvents['device'][0] | BusEvents['report'][0]
}

export class LiveStream {
  private readonly entries: StreamEntry[] = []
  private nextId = 1
  private readonly listeners = new Set<(entry: StreamEntry) => void>()

  constructor (bus: Bus, private readonly keep = 5000) {
    bus.on('alert', (data) => this.push('alert', data))
    bus.on('device', (data) => this.push('device', data))
    bus.on('report', (data) => this.push('report', data))
  }

  /** Entries after `lastId`, or null when some were already dropped (the client must reload). */
  since (lastId: number): StreamEntry[] | null {
    if (lastId >= this.nextId) return null
    const oldest = this.entries[0]?.id ?? this.nextId
    if (lastId < oldest - 1) return null
    return this.entries.filter((e) => e.id > lastId)
  }

  subscribe (listener: (entry: StreamEntry) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private push (event: StreamEntry['event'], data: StreamEntry['data']): void {
    const entry = { id: this.nextId++, event, data }
    this.entries.push(entry)
    if (this.entries.length > this.keep) this.entries.shift()
    for (const listener of this.listeners) listener(entry)
  }
}
