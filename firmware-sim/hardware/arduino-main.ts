/**
 * `npm run device:arduino -- --port /dev/ttyUSB0 --id shop-001 --secret …`: a shop-counter
 * Arduino (StandardFirmata, 57600 baud) as an SOS device. The shop PC's keyboard adds what the
 * board has no keys for: `cancel <PIN>`, `test`, `tamper` followed by Enter.
 */
import { createInterface } from 'node:readline'
import { SerialPort } from 'serialport'
import firmata from 'firmata-io'
import { pino } from 'pino'
import { integerArg, parseHardwareArgs, UsageError } from './cli.js'
import { DEFAULT_ARDUINO_PINS, startArduinoDevice } from './arduino.js'

const USAGE = `usage: npm run device:arduino -- --port PATH --id DEVICE_ID --secret SECRET
         [--button-pin ${DEFAULT_ARDUINO_PINS.button}] [--led-pin ${DEFAULT_ARDUINO_PINS.led}] [--piezo-pin ${DEFAULT_ARDUINO_PINS.piezo}] [--no-pullup]
         [--zone ZONE] [--silent|--no-silent] [--mqtt-url URL] [--state-dir DIR]
The board runs StandardFirmata. Type "cancel <PIN>", "test" or "tamper" and Enter on this terminal.`

const log = pino({ level: process.env.LOG_LEVEL || 'info' })

try {
  const args = parseHardwareArgs(process.argv.slice(2), {
    'button-pin': { type: 'string' },
    'led-pin': { type: 'string' },
    'piezo-pin': { type: 'string' },
    'no-pullup': { type: 'boolean', default: false },
    'no-silent': { type: 'boolean', default: false }
  }, 'counter')
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
  } else {
    const { values } = args
    const device = values['no-silent'] ? { ...args.device, silent: false } : args.device
    const transport = new SerialPort({ path: args.port, baudRate: 57600 })
    // A missing or busy port is a setup mistake: say so and stop, no stack trace.
    transport.on('error', (err) => {
      log.fatal({ port: args.port, err: err.message }, 'serial port failed')
      process.exit(1)
    })
    const io = new firmata.Firmata(transport)
    log.info({ port: args.port, id: device.id }, 'waiting for the board (StandardFirmata)')
    const arduino = await startArduinoDevice(io, device, {
      pins: {
        button: integerArg('button-pin', values['button-pin'], DEFAULT_ARDUINO_PINS.button as number),
        led: integerArg('led-pin', values['led-pin'], DEFAULT_ARDUINO_PINS.led as number),
        piezo: integerArg('piezo-pin', values['piezo-pin'], DEFAULT_ARDUINO_PINS.piezo as number)
      },
      pullup: !values['no-pullup']
    })
    const d = arduino.device
    log.info({ silent: d.silent }, 'board ready; the button is live')
    d.on('connected', () => log.info('connected to the gateway'))
    d.on('disconnected', () => log.warn('gateway connection lost; presses are kept and sent on reconnect'))
    d.on('refused', (reason) => log.error({ reason }, 'refused by the gateway'))
    d.on('seqUnsaved', (reason, boot) => log.error({ reason, boot, stateDir: device.stateDir }, 'cannot save the event counter (disk full or failing?); counting on in memory under a new boot id'))
    d.on('puback', (event) => log.info({ seq: event.seq, type: event.type }, 'event accepted by the gateway'))
    d.on('ack', (ack) => log.info(ack, 'ack'))

    const keyboard = createInterface({ input: process.stdin })
    keyboard.on('line', (line) => {
      const [command, argument] = line.trim().split(/\s+/)
      if (command === 'cancel' && argument && /^[0-9]{4,8}$/.test(argument)) d.cancel(argument)
      else if (command === 'test') d.test()
      else if (command === 'tamper') d.tamper()
      else if (command) process.stdout.write('commands: cancel <PIN> | test | tamper\n')
    })
    const shutdown = async () => {
      keyboard.close()
      await arduino.stop()
      transport.close()
    }
    process.once('SIGINT', () => { void shutdown() })
    process.once('SIGTERM', () => { void shutdown() })
  }
} catch (err) {
  if (!(err instanceof UsageError)) throw err
  process.stderr.write(`${err.message}\n${USAGE}\n`)
  process.exitCode = 2
}
