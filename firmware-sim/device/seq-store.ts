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
 *
 * A write that fails (a full or failing flash) must not stop the device from sending a press:
 * it goes on counting in memory under a fresh boot id (the contract's answer for a device that
 * cannot keep `seq`), and tries to save again at the next block.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { randomUUID } from 'node:crypto'
import writeFileAtomic from 'write-file-atomic'

export interface SeqState {
  boot: string
  reserved: number
}

/** Told when a block could not be saved: why, and the boot id the device now counts under. */
export type UnsavedListener = (reason: string, boot: string) => void

export class SeqStore {
  private currentBoot: string
  private nextSeq: number
  private reserved: number
  /**
   * Whether the file may name the current boot: then a seq past its `reserved` must never be
   * handed out unsaved, since a restart would hand it out again under the same identity.
   */
  private fileNamesBoot: boolean
  /** Why the counter was restarted on load, if it was (for the log). */
  readonly resetReason?: string
  /** The boot id the file named at start (undefined: the device started under a new one). */
  readonly bootAtStart?: string

  constructor (private readonly file: string, private readonly reserve = 16, private readonly onUnsaved?: UnsavedListener) {
    if (!Number.isInteger(reserve) || reserve < 1) throw new RangeError('reserve must be a positive integer')
    const loaded = readState(file)
    if (loaded.ok) {
      this.currentBoot = this.bootAtStart = loaded.state.boot
      this.nextSeq = this.reserved = loaded.state.reserved
      this.fileNamesBoot = true
    } else {
      this.currentBoot = randomUUID()
      this.nextSeq = this.reserved = 0
      this.fileNamesBoot = false
      this.resetReason = loaded.reason
    }
  }

  /** The boot id of the seqs handed out from now on (it changes when a block cannot be saved). */
  get boot (): string {
    return this.currentBoot
  }

  /** The next seq; persisted (as part of a block) before it is returned, or under a boot no file names. */
  next (): number {
    if (this.nextSeq >= this.reserved) this.reserveBlock()
    return this.nextSeq++
  }

  private reserveBlock (): void {
    const reserved = this.nextSeq + this.reserve
    try {
      mkdirSync(dirname(this.file), { recursive: true })
      writeFileAtomic.sync(this.file, JSON.stringify({ boot: this.currentBoot, reserved } satisfies SeqState) + '\n', { mode: 0o600 })
      this.fileNamesBoot = true
    } catch (err) {
      // The file still says this boot with an older `reserved`: after a restart the device
      // would number new events as these, and the server would take them for redeliveries and
      // drop them. A fresh boot id, which no file names, cannot come back after a restart.
      // The count goes on (not from 0): seqs keep increasing for whoever orders them.
      if (this.fileNamesBoot) {
        this.currentBoot = randomUUID()
        this.fileNamesBoot = false
      }
      this.onUnsaved?.((err as Error).message, this.currentBoot)
    }
    this.reserved = reserved
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
