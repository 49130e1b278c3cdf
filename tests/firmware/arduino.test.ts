/**
 * The johnny-five counter driver on a mock Firmata board (hardware is never needed), against
 * the real gateway and server: the button becomes a press event, the acknowledged ack sets
 * the LED pin, and a silent device never touches its piezo pin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mockFirmata from 'mock-firmata'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { startArduinoDevice, type RunningArduino } from '../../firmware-sim/hardware/arduino.js'

const PINS = { button: 2, led: 13, piezo: 3 }

/** A mock board that records every pin it is told to drive and lets the test press its button. */
function mockBoard () {
  const io = new mockFirmata.Firmata()
  const touched: Array<{ pin: number, op: string, value: number }> = []
  const readers = new Map<number, (value: number) => void>()
  io.pinMode = (pin, value) => { touched.push({ pin, op: 'pinMode', value }) }
  io.digitalWrite = (pin, value) => { touched.push({ pin, op: 'digitalWrite', value }) }
  io.analogWrite = (pin, value) => { touched.push({ pin, op: 'analogWrite', value }) }
  io.digitalRead = (pin, callback) => { readers.set(pin, callback) }
  setImmediate(() => { io.emit('connect'); io.emit('ready') })
  return {
    io,
    touched,
    writesTo: (pin: number) => touched.filter((t) => t.pin === pin && t.op !== 'pinMode'),
    /** The button is wired to ground with the pull-up: 0 is down. */
    setButton: (down: boolean) => readers.get(PINS.button)!(down ? 0 : 1)
  }
}

/** Resolves at the next event of the driver's johnny-five Button (its types have no `once`). */
const buttonEvent = (arduino: RunningArduino, event: 'press' | 'release') =>
  new Promise<void>((resolve) => { arduino.button.on(event, () => resolve()) })

/** A press as a finger makes it: down (past the 7 ms debounce), then up. */
async function pressFor (board: ReturnType<typeof mockBoard>, arduino: RunningArduino) {
  const down = buttonEvent(arduino, 'press')
  board.setButton(true)
  await down
  const up = buttonEvent(arduino, 'release')
  board.setButton(false)
  await up
}

describe('johnny-five counter driver on a mock board', () => {
  let system: TestSystem
  let stateDir: string
  const running: RunningArduino[] = []

  beforeAll(async () => {
    system = await startSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-arduino-'))
  }, 120_000)

  afterAll(async () => {
    for (const r of running) await r.stop()
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  async function start (id: string, silent: boolean) {
    const secret = await system.provision(id, { kind: 'counter', silent, pin: '4321' })
    const board = mockBoard()
    const arduino = await startArduinoDevice(board.io, {
      id, secret, kind: 'counter', zone: 'apd-1', silent, mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 }
    }, { pins: PINS, blinkMs: 100 })
    running.push(arduino)
    await eventually(async () => arduino.device.connected ? true : undefined, 5000, 'device connected')
    return { board, arduino }
  }

  it('a button press becomes a press event; the acknowledged ack sets the LED pin; the silent device never drives the piezo', async () => {
    const id = 'shop-j5-001'
    const { board, arduino } = await start(id, true)
    await pressFor(board, arduino)

    const event = await eventually(async () => (await system.api<any[]>('GET', `/v1/events?deviceId=${id}&type=press`)).body[0], 5000, 'press stored')
    expect(event).toMatchObject({ deviceId: id, type: 'press' })
    await eventually(async () => arduino.device.ledMode === 'blinking' ? true : undefined, 5000, 'LED blinking on received')

    const alert = (await system.api<any[]>('GET', `/v1/alerts?deviceId=${id}`)).body[0]
    expect((await system.api('POST', `/v1/alerts/${alert.id}/acknowledge`, {})).status).toBe(200)
    await eventually(async () => arduino.device.ledMode === 'steady' ? true : undefined, 5000, 'LED steady on acknowledged')
    expect(board.writesTo(PINS.led).at(-1)).toEqual({ pin: PINS.led, op: 'digitalWrite', value: 1 })

    expect(board.touched.filter((t) => t.pin === PINS.piezo)).toEqual([])
  })

  it('a device that is not silent does sound its piezo on received', async () => {
    const id = 'shop-j5-002'
    const { board, arduino } = await start(id, false)
    await pressFor(board, arduino)
    await eventually(async () => board.writesTo(PINS.piezo).some((t) => t.value === 1) ? true : undefined, 5000, 'piezo driven')
  })

  it('a button held for 1.5 s becomes a hold event', async () => {
    const id = 'shop-j5-003'
    const { board, arduino } = await start(id, true)
    const down = buttonEvent(arduino, 'press')
    board.setButton(true)
    await down
    const event = await eventually(async () => (await system.api<any[]>('GET', `/v1/events?deviceId=${id}&type=hold`)).body[0], 5000, 'hold stored')
    board.setButton(false)
    expect(event.type).toBe('hold')
    expect((await system.api<any[]>('GET', `/v1/events?deviceId=${id}&type=press`)).body).toEqual([])
  })
})
