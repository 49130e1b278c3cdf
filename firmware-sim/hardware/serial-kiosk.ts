/**
 * The kiosk controller board driver: frames read from the serial port (see line-protocol.ts)
 * feed the shared device state machine; what the device shows and says goes back to the board
 * as frames. Bad frames are answered NAK, counted by reason, and change nothing else.
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { ReadlineParser } from '@serialport/parser-readline'
import { Device, type DeviceConfig } from '../device/device.js'
import type { DeviceOutputs } from '../device/outputs.js'
import { encodeFrame, parseFrame, type BoardFrame, type FrameRejection } from './line-protocol.js'

export interface FrameCounters {
  accepted: number
  /** Resent by the board (same frame seq as the last accepted one): ACKed again, not repeated. */
  duplicates: number
  rejected: Partial<Record<FrameRejection, number>>
  rejectedTotal: number
}

export interface SerialKioskEvents {
  frame: [frame: BoardFrame]
  rejected: [reason: FrameRejection, line: string]
}

export class SerialKiosk extends EventEmitter<SerialKioskEvents> {
  readonly device: Device
  readonly counters: FrameCounters = { accepted: 0, duplicates: 0, rejected: {}, rejectedTotal: 0 }
  private lastSeq?: number
  private readonly lines: ReadlineParser

  constructor (private readonly port: Duplex, config: DeviceConfig) {
    super()
    this.device = new Device(config, this.outputs())
    this.lines = port.pipe(new ReadlineParser({ delimiter: '\n', encoding: 'utf8' }))
    this.lines.on('data', (line: string) => this.onLine(line.replace(/\r$/, '')))
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
    if (!parsed.ok) {
      this.counters.rejected[parsed.reason] = (this.counters.rejected[parsed.reason] ?? 0) + 1
      this.counters.rejectedTotal++
      this.write('NAK', parsed.seq ?? '-', parsed.reason)
      this.emit('rejected', parsed.reason, line)
      return
    }
    const { frame } = parsed
    this.write('ACK', frame.seq)
    if (frame.seq === this.lastSeq) {
      this.counters.duplicates++
      return
    }
    this.lastSeq = frame.seq
    this.counters.accepted++
    this.apply(frame)
    this.emit('frame', frame)
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
