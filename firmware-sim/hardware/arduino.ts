/**
 * The shop-counter device on an Arduino running StandardFirmata (johnny-five): a button,
 * an LED and a piezo, feeding the shared device state machine. The board is passed in as a
 * johnny-five IO (firmata-io over serialport in production, mock-firmata in tests).
 * A silent device never creates the piezo, so no code path can make it sound.
 */
import five from 'johnny-five'
import { Device, type DeviceConfig } from '../device/device.js'
import type { DeviceOutputs, LedMode, SoundCue } from '../device/outputs.js'

export interface ArduinoPins {
  button: number | string
  led: number | string
  piezo: number | string
}

export const DEFAULT_ARDUINO_PINS: Readonly<ArduinoPins> = Object.freeze({ button: 2, led: 13, piezo: 3 })

export interface ArduinoOptions {
  pins?: Partial<ArduinoPins>
  /** Button wired to ground with the internal pull-up (the usual counter wiring). */
  pullup?: boolean
  blinkMs?: number
}

/** Beep patterns per cue: [frequency Hz, duration ms] pairs, a pause between. */
const TUNES: Record<SoundCue, Array<[number, number]>> = {
  received: [[1760, 120]],
  acknowledged: [[1320, 150], [1760, 250]],
  dispatched: [[1760, 120], [1760, 120]],
  resolved: [[880, 300]],
  cancelled: [[880, 150], [660, 300]],
  self_test_ok: [[2093, 80], [2637, 80], [3136, 120]]
}

export interface RunningArduino {
  board: five.Board
  button: five.Button
  device: Device
  stop(): Promise<void>
}

/** Waits for the board, wires its parts to a new Device and starts it. */
export async function startArduinoDevice (io: unknown, config: DeviceConfig, options: ArduinoOptions = {}): Promise<RunningArduino> {
  const pins = { ...DEFAULT_ARDUINO_PINS, ...options.pins }
  const board = new five.Board({ io, repl: false, debug: false, sigint: false } as five.BoardOption & { io: unknown, sigint: boolean })
  await new Promise<void>((resolve, reject) => {
    board.on('ready', () => resolve())
    board.on('error', (err: Error) => reject(err))
  })

  const led = new five.Led({ pin: pins.led, board })
  led.off()
  const silent = config.silent ?? config.kind === 'counter'
  const piezo = silent ? undefined : new five.Piezo({ pin: pins.piezo as number, board } as five.PiezoOption & { board: five.Board })
  const outputs = arduinoOutputs(led, piezo, options.blinkMs ?? 500)
  const device = new Device({ ...config, silent }, outputs)

  const button = new five.Button({ pin: pins.button, board, isPullup: options.pullup ?? true } as five.ButtonOption & { board: five.Board })
  button.on('press', () => device.buttonDown())
  button.on('release', () => device.buttonUp())
  device.start()

  return {
    board,
    button,
    device,
    async stop () {
      await device.stop()
      led.stop().off()
      piezo?.off()
    }
  }
}

function arduinoOutputs (led: five.Led, piezo: five.Piezo | undefined, blinkMs: number): DeviceOutputs {
  let playing: NodeJS.Timeout | undefined
  return {
    led (mode: LedMode) {
      led.stop()
      if (mode === 'blinking') led.blink(blinkMs)
      else if (mode === 'flash') led.blink(Math.max(50, Math.round(blinkMs / 5)))
      else if (mode === 'steady') led.on()
      else led.off()
    },
    ...(piezo
      ? {
          sound (cue: SoundCue) {
            clearTimeout(playing)
            const notes = [...TUNES[cue]]
            const next = () => {
              const note = notes.shift()
              if (!note) return
              piezo.frequency(note[0], note[1])
              playing = setTimeout(next, note[1] + 60)
            }
            next()
          }
        }
      : {})
  }
}
