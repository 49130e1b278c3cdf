/**
 * The kiosk board driver on @serialport/binding-mock (hardware never needed), against the real
 * gateway and server: good frames become events, corrupted ones are rejected, counted and
 * NAKed, and lose nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MockBinding } from '@serialport/binding-mock'
import { SerialPortStream } from '@serialport/stream'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { SerialKiosk } from '../../firmware-sim/hardware/serial-kiosk.js'
import { checksum, encodeFrame, parseFrame } from '../../firmware-sim/hardware/line-protocol.js'

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

describe('serial kiosk driver on a mock port', () => {
  let system: TestSystem
  let stateDir: string
  let kiosk: SerialKiosk
  let port: SerialPortStream<typeof MockBinding>
  const id = 'kiosk-serial-001'

  const board = (line: string) => port.port!.emitData(Buffer.from(`${line}\r\n`))
  const written = () => port.port!.recording.toString('utf8')
  const eventsOf = async () => (await system.api<any[]>('GET', `/v1/events?deviceId=${id}`)).body.filter((e) => e.type !== 'heartbeat')

  beforeAll(async () => {
    system = await startSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-serial-'))
    MockBinding.createPort('/dev/ttyKIOSK', { echo: false, record: true })
    port = new SerialPortStream({ binding: MockBinding, path: '/dev/ttyKIOSK', baudRate: 115200 })
    await new Promise<void>((resolve, reject) => port.on('open', resolve).on('error', reject))
    kiosk = new SerialKiosk(port, {
      id, secret: await system.provision(id, { kind: 'kiosk' }), kind: 'kiosk', zone: 'apd-1',
      mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 }
    })
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
})
