/**
 * Splits a serial byte stream into lines, holding at most `limit` bytes of a line not yet ended.
 *
 * A frame is short, but the line may not be: a loose RX wire reads as an endless run of 0x00 or
 * 0xFF, a board in a boot loop prints garbage without a newline. A splitter that kept all of it
 * (as ReadlineParser does) would grow without bound and, joining and searching its whole buffer
 * for every chunk, cost more per chunk the longer it lasts, on the event loop that also carries
 * the kiosk's SOS button. Here the bytes past `limit` are dropped as they come, until the next
 * newline; that line then comes out once as `{ tooLong }`, and the next line is read as usual.
 * Each chunk is searched once, so the cost per byte stays the same.
 *
 * Lines end with `\n`; a `\r` before it is removed. Text is UTF-8, decoded once a line is
 * whole (a character split between two reads comes out whole).
 */
import { Transform, type TransformCallback } from 'node:stream'

export type SplitLine = { text: string } | { tooLong: true, bytes: number }

const NEWLINE = 0x0a
const CR = 0x0d

export class LineSplitter extends Transform {
  /** The line being read: at most `limit` bytes are ever held. */
  private readonly buffer: Buffer
  private length = 0
  /** Bytes of the current line, counted past the limit too (for the log). */
  private lineBytes = 0

  constructor (readonly limit: number) {
    super({ readableObjectMode: true })
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer')
    this.buffer = Buffer.alloc(limit)
  }

  /** Bytes held for the line not yet ended. */
  get held (): number {
    return this.length
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (let start = 0; start < chunk.length;) {
      const newline = chunk.indexOf(NEWLINE, start)
      const end = newline === -1 ? chunk.length : newline
      this.keep(chunk, start, end)
      if (newline === -1) break
      this.endLine()
      start = newline + 1
    }
    callback()
  }

  /** A line never ended (the port closed mid-line) is not a frame: it is dropped. */
  override _flush (callback: TransformCallback): void {
    this.length = this.lineBytes = 0
    callback()
  }

  private keep (chunk: Buffer, start: number, end: number): void {
    this.lineBytes += end - start
    if (this.lineBytes > this.limit) {
      this.length = 0 // too long: what was held and what comes until the newline is dropped
      return
    }
    this.length += chunk.copy(this.buffer, this.length, start, end)
  }

  private endLine (): void {
    const bytes = this.lineBytes
    let length = this.length
    this.length = this.lineBytes = 0
    if (bytes > this.limit) {
      this.push({ tooLong: true, bytes } satisfies SplitLine)
      return
    }
    if (length > 0 && this.buffer[length - 1] === CR) length--
    this.push({ text: this.buffer.toString('utf8', 0, length) } satisfies SplitLine)
  }
}
