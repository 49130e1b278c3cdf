/**
 * The kiosk board driver on @serialport/binding-mock (hardware never needed), against the real
 * gateway and server: good frames become events, corrupted ones are rejected, counted and
 * NAKed, and lose nothing else; a frame is ACKed only once its event is queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MockBinding } from '@serialport/binding-mock'
import { SerialPortStream } from '@serialport/stream'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { SerialKiosk } from '../../firmware-sim/hardware/serial-kiosk.js'
import { LineSplitter, type SplitLine } from '../../firmware-sim/hardware/line-splitter.js'
import { checksum, encodeFrame, MAX_LINE_BYTES, parseFrame } from '../../firmware-sim/hardware/line-protocol.js'

const RESEND_WINDOW_MS = 1000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('line protocol', () => {
  it('uses the NMEA checksum: XOR of the bytes between $ and *', () => {
    // A well-known NMEA sentence and its published checksum.
    expect(checksum('GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,')).toBe('76')
    expect(encodeFrame('SOS', 7, 'press')).toBe(`$SOS,7,press*${checksum('SOS,7,press')}`)
    expect(parseFrame(encodeFrame('SOS', 7, 'report', 'noise', 'loud, late music'))).toEqual({
      ok: true, frame: { seq: 7, command: { type: 'report', category: 'noise', text: 'loud, late music' } }
    })
  })
})

describe('line splitter', () => {
  it('splits lines across reads, drops the CR, decodes a character split between reads, and rejects an over-long line once without holding it', async () => {
    const splitter = new LineSplitter(8)
    const lines: SplitLine[] = []
    splitter.on('data', (line: SplitLine) => lines.push(line))
    const word = Buffer.from('Đèn\r\n') // 6 bytes before the newline; Đ is two
    splitter.write(word.subarray(0, 1))
    splitter.write(word.subarray(1))
    splitter.write(Buffer.from('0123456789abc'))
    expect(splitter.held).toBe(0) // past the limit: nothing of it is kept
    splitter.write(Buffer.from('def\nok\n'))
    await new Promise((resolve) => setImmediate(resolve))
    expect(lines).toEqual([{ text: 'Đèn' }, { tooLong: true, bytes: 16 }, { text: 'ok' }])
  })
})

describe('serial kiosk driver on a mock port', () => {
  let system: TestSystem
  let stateDir: string
  let kiosk: SerialKiosk
  let port: SerialPortStream<typeof MockBinding>
  const id = 'kiosk-serial-001'

  const board = (line: string) => port.port!.emitData(Buffer.from(`${line}\r\n`))
  const written = () => port.port!.recording.toString('utf8')
  const writtenFrames = (): string[] => written().split('\r\n')
  const eventsOf = async (deviceId = id) => (await system.api<any[]>('GET', `/v1/events?deviceId=${deviceId}`)).body.filter((e) => e.type !== 'heartbeat')

  beforeAll(async () => {
    system = await startSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-serial-'))
    MockBinding.createPort('/dev/ttyKIOSK', { echo: false, record: true })
    port = new SerialPortStream({ binding: MockBinding, path: '/dev/ttyKIOSK', baudRate: 115200 })
    await new Promise<void>((resolve, reject) => port.on('open', resolve).on('error', reject))
    kiosk = new SerialKiosk(port, {
      id, secret: await system.provision(id, { kind: 'kiosk' }), kind: 'kiosk', zone: 'apd-1',
      mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 }
    }, { resendWindowMs: RESEND_WINDOW_MS })
    kiosk.start()
    await eventually(async () => kiosk.device.connected ? true : undefined, 5000, 'kiosk connected')
  }, 120_000)

  afterAll(async () => {
    await kiosk?.stop()
    if (port?.isOpen) await new Promise((resolve) => port.close(resolve))
    MockBinding.reset()
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  it('frames written by the board become events, acknowledged on the line', async () => {
    board(encodeFrame('SOS', 1, 'press'))
    board(encodeFrame('SOS', 2, 'report', 'lighting', 'Đèn đường hỏng, street light out'))
    board(encodeFrame('SOS', 2, 'report', 'lighting', 'Đèn đường hỏng, street light out')) // resent: ACK lost
    const events = await eventually(async () => {
      const list = await eventsOf()
      return list.length === 2 ? list : undefined
    }, 5000, 'two events stored')
    expect(events.map((e) => e.type).sort()).toEqual(['press', 'report'])
    expect(events.find((e) => e.type === 'report').data).toEqual({ report: { category: 'lighting', text: 'Đèn đường hỏng, street light out' } })
    expect(kiosk.counters).toMatchObject({ accepted: 2, duplicates: 1, rejectedTotal: 0 })
    expect(written()).toContain(`${encodeFrame('ACK', 1)}\r\n`)
    await eventually(async () => written().includes(encodeFrame('LED', 'blinking')) ? true : undefined, 5000, 'LED frame sent to the board')
  })

  it('rejects and counts corrupted frames, NAKs them, and keeps taking good ones', async () => {
    const good = encodeFrame('SOS', 3, 'tamper')
    board(good.slice(0, -2) + (good.endsWith('00') ? '01' : '00')) // wrong checksum
    board('SOS,4,press*00') // no $
    board(encodeFrame('SOS', 5, 'explode')) // unknown type
    board(encodeFrame('SOS', 6, 'cancel', '12')) // PIN too short
    board(`$${'x'.repeat(600)}*00`) // too long
    board('\u0000\u00ff\u0013garbage') // line noise
    board(encodeFrame('SOS', 7, 'test'))

    const events = await eventually(async () => {
      const list = await eventsOf()
      return list.some((e) => e.type === 'test') ? list : undefined
    }, 5000, 'the good frame after the bad ones stored')
    expect(events.map((e) => e.type).sort()).toEqual(['press', 'report', 'test'])
    expect(kiosk.counters.rejectedTotal).toBe(6)
    expect(kiosk.counters.rejected).toEqual({ checksum: 1, framing: 2, unknown_type: 1, bad_argument: 1, too_long: 1 })
    expect(written()).toContain(`${encodeFrame('NAK', '-', 'checksum')}\r\n`)
    expect(written()).toContain(`${encodeFrame('NAK', 5, 'unknown_type')}\r\n`)
  })
  it('an announcement goes to the board as $ANN, and is taken off with $ANC when it expires', async () => {
    const { status, body } = await system.api('POST', '/v1/announcements', {
      zone: 'apd-1', title: 'Cúp nước 10 phút', body: 'Khu phố 1', lang: 'vi', expiresAt: new Date(Date.now() + 2000).toISOString()
    })
    expect(status).toBe(201)
    await eventually(async () => written().includes(encodeFrame('ANN', body.id, 'Cúp nước 10 phút')) ? true : undefined, 5000, '$ANN on the line')
    expect(written()).not.toContain(encodeFrame('ANC', body.id))
    await eventually(async () => written().includes(encodeFrame('ANC', body.id)) ? true : undefined, 10_000, '$ANC on the line')
    const frames = writtenFrames()
    expect(frames.indexOf(encodeFrame('ANC', body.id))).toBeGreaterThan(frames.indexOf(encodeFrame('ANN', body.id, 'Cúp nước 10 phút')))
  })

  it('a board that rebooted counts its frames from the start again: a new frame with the seq of the last one is sent, not dropped as a resend', async () => {
    const presses = async () => (await eventsOf()).filter((e) => e.type === 'press').length
    const before = await presses()
    board(encodeFrame('SOS', 1, 'report', 'noise', 'karaoke after midnight'))
    await eventually(async () => (await eventsOf()).some((e) => e.data?.report?.text === 'karaoke after midnight') ? true : undefined, 5000, 'report stored')
    const acked = writtenFrames().filter((f) => f === encodeFrame('ACK', 1)).length

    // Power glitch: the board restarts, its frame counter with it. A resident presses SOS.
    board(encodeFrame('SOS', 1, 'press'))
    await eventually(async () => (await presses()) === before + 1 ? true : undefined, 5000, 'the press after the reboot stored')
    // Later than any resend, the very same frame is a new one too (another reboot, another press).
    await sleep(RESEND_WINDOW_MS + 200)
    board(encodeFrame('SOS', 1, 'press'))
    await eventually(async () => (await presses()) === before + 2 ? true : undefined, 5000, 'the second press stored')
    expect(writtenFrames().filter((f) => f === encodeFrame('ACK', 1)).length).toBe(acked + 2)
    expect(kiosk.counters.duplicates).toBe(1) // only the resend of the first test
  })

  it('a frame the device cannot take is NAKed, never ACKed, and the board may resend it', async () => {
    const tamper = kiosk.device.tamper
    const failures: Error[] = []
    kiosk.on('failed', (_frame, err) => failures.push(err))
    kiosk.device.tamper = () => { throw new Error('cannot queue') }
    try {
      board(encodeFrame('SOS', 20, 'tamper'))
      await eventually(async () => written().includes(encodeFrame('NAK', 20, 'not_queued')) ? true : undefined, 5000, 'NAK not_queued')
    } finally {
      kiosk.device.tamper = tamper
    }
    expect(written()).not.toContain(encodeFrame('ACK', 20))
    expect(failures.map((e) => e.message)).toEqual(['cannot queue'])
    board(encodeFrame('SOS', 20, 'tamper')) // resent: taken this time, not mistaken for a duplicate
    await eventually(async () => written().includes(encodeFrame('ACK', 20)) ? true : undefined, 5000, 'ACK of the resent frame')
    await eventually(async () => (await eventsOf()).some((e) => e.type === 'tamper') ? true : undefined, 5000, 'tamper stored')
  })

  it('a line that never ends (a loose RX wire) is held only up to the frame limit, then rejected once as too long', async () => {
    // What the driver holds for the unfinished line (the reviewer's measure: the splitter's buffer).
    const lines = (kiosk as unknown as { lines: { buffer: Buffer } }).lines
    const rejectedBefore = kiosk.counters.rejected.too_long ?? 0
    const rejectedLines: string[] = []
    kiosk.on('rejected', (_reason, line) => rejectedLines.push(line))
    const noise = Buffer.alloc(4096, 0xff)
    for (let i = 0; i < 256; i++) { // 1 MiB without a newline, read by read
      port.port!.emitData(noise)
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(lines.buffer.length).toBeLessThanOrEqual(MAX_LINE_BYTES + 1)
    port.port!.emitData(Buffer.from('\r\n'))
    board(encodeFrame('SOS', 21, 'test'))
    await eventually(async () => written().includes(encodeFrame('ACK', 21)) ? true : undefined, 5000, 'the frame after the noise ACKed')
    expect(kiosk.counters.rejected.too_long).toBe(rejectedBefore + 1)
    expect(rejectedLines).toHaveLength(1)
    expect(rejectedLines[0]!.length).toBeLessThan(100) // not a megabyte into the log
    expect(writtenFrames().filter((f) => f === encodeFrame('NAK', '-', 'too_long')).length).toBe(rejectedBefore + 1)
  })

  it('a state disk that cannot be written does not kill the driver: the press is queued and sent under a fresh boot, then ACKed', async () => {
    const fullId = 'kiosk-serial-002'
    // A plain file where the seq file's directory should be: every write of the seq file fails.
    const unwritable = join(stateDir, 'not-a-directory')
    writeFileSync(unwritable, '')
    MockBinding.createPort('/dev/ttyKIOSK2', { echo: false, record: true })
    const port2 = new SerialPortStream({ binding: MockBinding, path: '/dev/ttyKIOSK2', baudRate: 115200 })
    await new Promise<void>((resolve, reject) => port2.on('open', resolve).on('error', reject))
    const kiosk2 = new SerialKiosk(port2, {
      id: fullId, secret: await system.provision(fullId, { kind: 'kiosk' }), kind: 'kiosk', zone: 'apd-1',
      mqttUrl: system.mqttUrl, stateDir: unwritable, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 }
    })
    const unsaved: string[] = []
    kiosk2.device.on('seqUnsaved', (reason) => unsaved.push(reason))
    try {
      kiosk2.start()
      await eventually(async () => kiosk2.device.connected ? true : undefined, 5000, 'second kiosk connected')
      port2.port!.emitData(Buffer.from(`${encodeFrame('SOS', 1, 'press')}\r\n`))
      const [press] = await eventually(async () => {
        const list = (await eventsOf(fullId)).filter((e) => e.type === 'press')
        return list.length === 1 ? list : undefined
      }, 5000, 'press stored')
      expect(press.boot).toBe(kiosk2.device.boot)
      expect(unsaved).toHaveLength(1)
      expect(port2.port!.recording.toString('utf8')).toContain(`${encodeFrame('ACK', 1)}\r\n`)
    } finally {
      await kiosk2.stop()
      if (port2.isOpen) await new Promise((resolve) => port2.close(resolve))
    }
  })
})
