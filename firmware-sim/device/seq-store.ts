/**
 * The device's event counter, kept across restarts in a small file per device.
 *
 * The file holds `{boot, reserved}`: the boot id that scopes this counter, and the first seq not
 * yet handed out. Seqs are reserved in blocks (`reserve`) and the file is rewritten only when a
 * block is used up, as firmware does to spare its flash; after a restart the device continues
 * from the end of the last reserved block, so a seq is never reused within one boot id even
 * after a crash. A missing or unreadable file starts a new boot id: the server then treats the
 * device's events as new, never as redeliveries of older ones (DESIGN.md §3).
 * Writes are atomic (temp file, fsync, rename): a power cut leaves the old or the new file.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { randomUUID } from 'node:crypto'
import writeFileAtomic from 'write-file-atomic'

export interface SeqState {
  boot: string
  reserved: number
}

export class SeqStore {
  readonly boot: string
  private nextSeq: number
  private reserved: number
  /** Why the counter was restarted on load, if it was (for the log). */
  readonly resetReason?: string

  constructor (private readonly file: string, private readonly reserve = 16) {
    if (!Number.isInteger(reserve) || reserve < 1) throw new RangeError('reserve must be a positive integer')
    const loaded = readState(file)
    if (loaded.ok) {
      this.boot = loaded.state.boot
      this.nextSeq = this.reserved = loaded.state.reserved
    } else {
      this.boot = randomUUID()
      this.nextSeq = this.reserved = 0
      this.resetReason = loaded.reason
    }
  }

  /** The next seq; persisted (as part of a block) before it is returned. */
  next (): number {
    if (this.nextSeq >= this.reserved) {
      this.reserved = this.nextSeq + this.reserve
      mkdirSync(dirname(this.file), { recursive: true })
      writeFileAtomic.sync(this.file, JSON.stringify({ boot: this.boot, reserved: this.reserved } satisfies SeqState) + '\n', { mode: 0o600 })
    }
    return this.nextSeq++
  }

  /** The last seq handed out, or -1. */
  get last (): number {
    return this.nextSeq - 1
  }
}

function readState (file: string): { ok: true, state: SeqState } | { ok: false, reason: string } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return { ok: false, reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'first start' : `unreadable: ${(err as Error).message}` }
  }
  try {
    const value = JSON.parse(text) as Partial<SeqState>
    if (typeof value.boot === 'string' && /^[A-Za-z0-9_.:-]{1,36}$/.test(value.boot) &&
        Number.isSafeInteger(value.reserved) && (value.reserved as number) >= 0) {
      return { ok: true, state: { boot: value.boot, reserved: value.reserved as number } }
    }
  } catch {}
  return { ok: false, reason: 'corrupt' }
}
