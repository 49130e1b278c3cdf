/**
 * The kiosk controller board driver: frames read from the serial port (see line-protocol.ts)
 * feed the shared device state machine; what the device shows and says goes back to the board
 * as frames. Bad frames are answered NAK, counted by reason, and change nothing else.
 * A frame is ACKed only once the device has taken it (its event queued): the board may forget
 * a frame it heard ACKed.
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { Device, type DeviceConfig } from '../device/device.js'
import type { DeviceOutputs } from '../device/outputs.js'
import { encodeFrame, MAX_LINE_BYTES, parseFrame, type BoardFrame, type FrameRejection } from './line-protocol.js'
import { LineSplitter, type SplitLine } from './line-splitter.js'

/** Why a frame was NAKed: it was bad, or the device could not take it (`not_queued`; the board may resend it). */
export type FrameRefusal = FrameRejection | 'not_queued'

export interface FrameCounters {
  accepted: number
  /** Resent by the board (the same frame as the last accepted one, soon after it): ACKed again, not repeated. */
  duplicates: number
  rejected: Partial<Record<FrameRefusal, number>>
  rejectedTotal: number
}

export interface SerialKioskEvents {
  frame: [frame: BoardFrame]
  rejected: [reason: FrameRefusal, line: string]
  /** The device could not take a good frame (a bug): it was NAKed `not_queued`. */
  failed: [frame: BoardFrame, err: Error]
}

export interface SerialKioskOptions {
  /**
   * How long after a frame the same frame again is taken for a resend (its ACK was lost or
   * late). A board resends within its ACK timeout, well under this; later, the same words are a
   * new frame (a board that rebooted counts its frames from the start again).
   */
  resendWindowMs?: number
}

export const DEFAULT_RESEND_WINDOW_MS = 5000

export class SerialKiosk extends EventEmitter<SerialKioskEvents> {
  readonly device: Device
  readonly counters: FrameCounters = { accepted: 0, duplicates: 0, rejected: {}, rejectedTotal: 0 }
  /** The last frame the device took, as a comparable string, and when. */
  private last?: { frame: string, at: number }
  private readonly resendWindowMs: number
  private readonly lines: LineSplitter

  constructor (private readonly port: Duplex, config: DeviceConfig, options: SerialKioskOptions = {}) {
    super()
    this.resendWindowMs = options.resendWindowMs ?? DEFAULT_RESEND_WINDOW_MS
    this.device = new Device(config, this.outputs())
    // One byte more than a frame may have: room for the `\r` of a `\r\n` line ending.
    this.lines = port.pipe(new LineSplitter(MAX_LINE_BYTES + 1))
    this.lines.on('data', (line: SplitLine) => {
      if ('tooLong' in line) this.reject('too_long', undefined, `(${line.bytes} bytes before a newline, dropped)`)
      else this.onLine(line.text)
    })
  }

  start (): void {
    this.device.start()
  }

  async stop (): Promise<void> {
    this.port.unpipe(this.lines)
    await this.device.stop()
  }

  private onLine (line: string): void {
    if (line.trim() === '') return
    const parsed = parseFrame(line)
    if (!parsed.ok) return this.reject(parsed.reason, parsed.seq, line)
    const { frame } = parsed
    // Only the whole frame again, and soon, is a resend: the seq alone is not enough, since a
    // board that rebooted numbers its frames from the start again, and its first frame after
    // the reboot (a resident's press) may carry the seq of the last one before it.
    const now = performance.now()
    const key = JSON.stringify(frame)
    if (this.last && this.last.frame === key && now - this.last.at <= this.resendWindowMs) {
      this.counters.duplicates++
      this.write('ACK', frame.seq) // it was taken the first time
      return
    }
    try {
      this.apply(frame)
    } catch (err) {
      this.emit('failed', frame, err as Error)
      return this.reject('not_queued', frame.seq, line)
    }
    this.last = { frame: key, at: now }
    this.counters.accepted++
    this.write('ACK', frame.seq)
    this.emit('frame', frame)
  }

  private reject (reason: FrameRefusal, seq: number | undefined, line: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1
    this.counters.rejectedTotal++
    this.write('NAK', seq ?? '-', reason)
    this.emit('rejected', reason, line)
  }

  private apply ({ command }: BoardFrame): void {
    const d = this.device
    switch (command.type) {
      case 'press': return d.press()
      case 'down': return d.buttonDown()
      case 'up': return d.buttonUp()
      case 'hold': d.buttonDown(); d.holdNow(); return d.buttonUp()
      case 'cancel': return d.cancel(command.pin)
      case 'tamper': return d.tamper()
      case 'test': return d.test()
      case 'power_lost': return d.powerLost()
      case 'report': return d.report(command.category, command.text)
    }
  }

  private outputs (): DeviceOutputs {
    return {
      led: (mode) => this.write('LED', mode),
      sound: (cue) => this.write('SND', cue),
      screen: (message) => {
        // The board takes the announcement off and shows its idle page; no text comes with it.
        if (message.kind === 'announcement_cleared') return this.write('ANC', message.id)
        if (message.kind === 'ticket') this.write('TKT', message.ticketId)
        if (message.kind === 'announcement') this.write('ANN', message.id, message.title)
        this.write('SCR', 'vi', message.text.vi)
        this.write('SCR', 'en', message.text.en)
      }
    }
  }

  private write (...fields: Array<string | number>): void {
    this.port.write(`${encodeFrame(...fields)}\r\n`)
  }
}
