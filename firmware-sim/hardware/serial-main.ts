/**
 * `npm run device:serial -- --port /dev/ttyUSB1 --baud 115200 --id kiosk-001 --secret … --zone apd-kp1`:
 * a street kiosk whose controller board speaks the line protocol (line-protocol.ts) over serial.
 */
import { SerialPort } from 'serialport'
import { pino } from 'pino'
import { integerArg, parseHardwareArgs, UsageError } from './cli.js'
import { SerialKiosk } from './serial-kiosk.js'

const USAGE = `usage: npm run device:serial -- --port PATH [--baud 115200] --id DEVICE_ID --secret SECRET
         [--zone ZONE] [--kind kiosk|button|counter] [--silent] [--mqtt-url URL] [--state-dir DIR]
Frames: $SOS,<seq>,<type>[,<args>]*<XOR checksum in hex>, one per line.`

const log = pino({ level: process.env.LOG_LEVEL || 'info' })

try {
  const args = parseHardwareArgs(process.argv.slice(2), { baud: { type: 'string' } }, 'kiosk')
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
  } else {
    const port = new SerialPort({ path: args.port, baudRate: integerArg('baud', args.values.baud, 115200) })
    port.on('error', (err) => {
      log.fatal({ port: args.port, err: err.message }, 'serial port failed')
      process.exit(1)
    })
    const kiosk = new SerialKiosk(port, args.device)
    kiosk.on('frame', (frame) => log.info({ frame }, 'frame from the board'))
    kiosk.on('rejected', (reason, line) => log.warn({ reason, line: line.slice(0, 80), rejected: kiosk.counters.rejectedTotal }, 'bad frame rejected'))
    kiosk.on('failed', (frame, err) => log.error({ frame, err: err.message }, 'the device could not take a frame; NAKed so the board can resend it'))
    const d = kiosk.device
    d.on('connected', () => log.info('connected to the gateway'))
    d.on('disconnected', () => log.warn('gateway connection lost; events are kept and sent on reconnect'))
    d.on('refused', (reason) => log.error({ reason }, 'refused by the gateway'))
    d.on('seqUnsaved', (reason, boot) => log.error({ reason, boot, stateDir: args.device.stateDir }, 'cannot save the event counter (disk full or failing?); counting on in memory under a new boot id'))
    d.on('ack', (ack) => log.info(ack, 'ack'))
    port.on('open', () => {
      log.info({ port: args.port, id: args.device.id }, 'serial port open')
      kiosk.start()
    })
    const shutdown = async () => {
      await kiosk.stop()
      log.info({ counters: kiosk.counters }, 'stopped')
      port.close()
    }
    process.once('SIGINT', () => { void shutdown() })
    process.once('SIGTERM', () => { void shutdown() })
  }
} catch (err) {
  if (!(err instanceof UsageError)) throw err
  process.stderr.write(`${err.message}\n${USAGE}\n`)
  process.exitCode = 2
}
