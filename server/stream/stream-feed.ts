/**
 * One client's share of the live stream, written only as fast as it reads. Writing on into a
 * socket that does not drain queued every entry in the process, four writes each (chunk size,
 * line end, text, line end), and a queued write costs more than its bytes: a megabyte "unsent"
 * by `writableLength` held about 2.7 MB of heap, times every stuck stream (300 of them: 1.3 GB).
 * So once the socket's buffer is full (`write` says false), nothing more is written: the
 * entries wait in the live stream's own replay, shared by every client, and the feed takes up
 * again from the last one it wrote when the socket drains. What a stuck client holds is then
 * its socket's buffer, some 16 KiB, however much happens meanwhile.
 * A client that misses more than `maxMissedBytes` while stuck is let go: it reconnects with
 * Last-Event-ID and catches up, or is told to reload.
 */
import type { ServerResponse } from 'node:http'
import type { LiveStream, StreamEntry } from './live-stream.js'

const RESET = 'event: reset\ndata: {}\n\n'

export class StreamFeed {
  /** The last entry written, where a catch-up starts. */
  private lastId: string
  /** The socket's buffer is full: entries wait in the live stream until it drains. */
  private behind = false
  /** What the client missed since it fell behind (the entries' sizes). */
  private missedBytes = 0

  constructor (
    private readonly stream: LiveStream,
    private readonly out: ServerResponse,
    private readonly maxMissedBytes: number
  ) {
    this.lastId = stream.headId()
  }

  /**
   * The first lines: the client's retry delay, then what it missed since `lastEventId` (or a
   * reset, when that is no longer known).
   */
  start (lastEventId: string | undefined): void {
    this.write('retry: 2000\n\n')
    if (lastEventId === undefined || lastEventId === '') return
    if (this.stream.since(lastEventId) === null) return this.reset()
    this.lastId = lastEventId
    this.catchUp()
  }

  /** A new entry on the live stream. */
  entry (entry: StreamEntry): void {
    if (this.behind) return this.missed(entry.text.length)
    this.lastId = this.stream.idOf(entry)
    this.write(entry.text)
  }

  /** The client must reload its lists (see `LiveStream.resetAll`). Behind, it hears so when it drains. */
  reset (): void {
    if (this.behind) return
    this.lastId = this.stream.headId()
    this.write(RESET)
  }

  /** A comment line, for the client and proxies to tell a quiet ward from a dead link; not while behind. */
  keepAlive (): void {
    if (!this.behind) this.write(': keep-alive\n\n')
  }

  private write (text: string): void {
    if (this.out.destroyed || this.out.writableEnded || this.behind) return
    if (this.out.write(text)) return
    this.behind = true
    this.missedBytes = 0
    this.out.once('drain', () => this.catchUp())
  }

  private missed (bytes: number): void {
    this.missedBytes += bytes
    if (this.missedBytes > this.maxMissedBytes) this.out.destroy()
  }

  /** The socket drained: what came meanwhile, from the live stream's replay, until it is full again. */
  private catchUp (): void {
    this.behind = false
    const missed = this.stream.since(this.lastId)
    if (missed === null) return this.reset()
    for (const entry of missed) {
      if (this.behind || this.out.destroyed) return
      this.entry(entry)
    }
  }
}
