/**
 * What the button shows follows its alert forward only, whatever order the acks come in, and a
 * self-test gets a cue of its own that leaves the alarm's light as it was. Against the real
 * gateway and server; acks that the real system sends only in rare timings (a duplicate answer
 * without an alert id, a resend, a late ack) are injected as the gateway delivers them.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { startHoldingProxy, type HeldAnswer, type HoldingProxy } from './holding-proxy.js'
import { Device, type DeviceConfig } from '../../firmware-sim/device/device.js'
import { RecordedOutputs } from '../../firmware-sim/device/outputs.js'
import { AlertProgress } from '../../firmware-sim/device/alert-progress.js'
import { Led } from '../../firmware-sim/device/led.js'
import type { LedMode } from '../../firmware-sim/device/outputs.js'
import { topics, type Ack } from '../../protocol/index.js'

describe('LED cue', () => {
  it('shows the alarm\'s state again after a cue, and a change of that state during the cue ends it at once', () => {
    vi.useFakeTimers()
    try {
      const driven: LedMode[] = []
      const led = new Led((mode) => driven.push(mode))
      led.show('steady')
      led.flash('flash', 2000)
      vi.advanceTimersByTime(2000)
      expect(driven).toEqual(['steady', 'flash', 'steady'])
      led.flash('flash', 2000)
      led.show('off') // resolved during the cue
      vi.advanceTimersByTime(5000)
      expect(driven).toEqual(['steady', 'flash', 'steady', 'flash', 'off'])
      expect(led.state).toBe('off')
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('alert progress (pure): forward only, alerts ordered by seq', () => {
  it('takes the id from whichever ack brings it first, and never moves back', () => {
    const alert = new AlertProgress()
    expect(alert.advance('acknowledged', 'A', 3)).toBe('acknowledged') // before its `received`
    expect(alert.advance('received', 'A', 3)).toBeUndefined()
    expect(alert.advance('received', undefined, 3)).toBeUndefined()
    expect(alert.advance('acknowledged', 'A', 3)).toBeUndefined() // a resend
    expect(alert.advance('dispatched', 'A', 3)).toBe('dispatched')
    expect(alert.advance('acknowledged', 'A', 3)).toBeUndefined()
    expect(alert.advance('resolved', 'A', 3)).toBe('resolved')
    expect(alert.advance('cancelled', 'A', 3)).toBeUndefined()
    expect([alert.alertId, alert.step]).toEqual(['A', 'resolved'])
  })

  it('an id-less `received` never changes an active alert, and starts one only after the last is over, for a later press', () => {
    const alert = new AlertProgress()
    expect(alert.advance('received', undefined, 4)).toBe('received') // a press whose answer lost its id
    expect(alert.advance('acknowledged', 'A', 4)).toBe('acknowledged') // its id arrives
    expect(alert.advance('received', undefined, 5)).toBeUndefined() // a press joining it
    expect(alert.advance('resolved', 'A', 5)).toBe('resolved')
    expect(alert.advance('received', undefined, 5)).toBeUndefined() // late: a press of A
    expect(alert.advance('received', undefined, 6)).toBe('received') // a press after A was over
  })

  it('another alert with a later seq is newer (the end of the old one was lost); with an earlier seq, old news', () => {
    const alert = new AlertProgress()
    expect(alert.advance('acknowledged', 'A', 2)).toBe('acknowledged')
    expect(alert.advance('received', 'B', 7)).toBe('received') // A's `resolved` never came
    expect(alert.advance('dispatched', 'A', 2)).toBeUndefined()
    expect(alert.advance('received', 'Z', 1)).toBeUndefined()
    expect(alert.advance('acknowledged', 'B', 7)).toBe('acknowledged')
  })
})

describe('the alert shown by a device only moves forward; a self-test has its own cue', () => {
  let system: TestSystem
  let proxy: HoldingProxy
  let stateDir: string
  const devices: Device[] = []
  const holds: HeldAnswer[] = []

  beforeAll(async () => {
    system = await startSystem({
      gatewayServerUrl: async (serverUrl) => {
        proxy = await startHoldingProxy(serverUrl)
        return proxy.url
      }
    })
    stateDir = mkdtempSync(join(tmpdir(), 'sos-fw-order-'))
  }, 120_000)

  afterAll(async () => {
    for (const hold of holds) hold.release()
    for (const device of devices) await device.stop()
    await system?.stop()
    await proxy?.close()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  const startDevice = async (id: string, extra: Partial<DeviceConfig> & Record<string, unknown> = {}) => {
    const { kind = 'button', ...provisioning } = extra
    const secret = await system.provision(id, { kind, ...provisioning })
    const outputs = new RecordedOutputs()
    const device = new Device({
      id, secret, kind: kind as DeviceConfig['kind'], zone: 'apd-1', mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 }
    }, outputs)
    devices.push(device)
    device.start()
    if (!device.connected) await once(device, 'connected')
    return { device, outputs }
  }
  const alertOf = (id: string, kind = 'panic') => eventually(async () =>
    (await system.api<any[]>('GET', `/v1/alerts?deviceId=${id}`)).body.find((a) => a.kind === kind && !['resolved', 'cancelled'].includes(a.state)), 5000, `${kind} alert of ${id}`)
  const act = async (alertId: string, action: string, body: unknown = {}) => {
    expect((await system.api('POST', `/v1/alerts/${alertId}/${action}`, body)).status).toBe(200)
  }
  /** Publishes an ack as the gateway delivers it, and waits until the device has taken it. */
  const deliver = async (device: Device, ack: Ack) => {
    const taken = once(device, 'ack')
    await new Promise<void>((resolve, reject) => system.gateway.broker.publish(
      { cmd: 'publish', topic: topics.ack(device.id), payload: Buffer.from(JSON.stringify(ack)), qos: 1, retain: false, dup: false },
      (err) => err ? reject(err) : resolve()))
    await taken
  }

  it('a `received` that comes after `acknowledged` (its ingest answer was slow) does not undo "help is coming"', async () => {
    const id = 'btn-order-001'
    const { device, outputs } = await startDevice(id)
    const hold = proxy.holdNext((method, path, body) => method === 'POST' && path.startsWith('/v1/ingest') && body.includes(id) && body.includes('"press"'))
    holds.push(hold)
    device.press()
    await hold.held // stored by the server; its answer to the gateway is on a slow link
    await act((await alertOf(id)).id, 'acknowledge')
    await eventually(async () => outputs.ledMode === 'steady' ? true : undefined, 5000, 'LED steady (acknowledged)')

    const late = once(device, 'ack')
    hold.release() // the ingest answer arrives: `received`
    expect((await late)[0]).toMatchObject({ state: 'received', seq: device.lastSeq })
    expect(outputs.ledMode).toBe('steady')
    expect(outputs.ledHistory).toEqual(['steady'])
    expect(outputs.sounds).toEqual(['acknowledged'])
  })

  it('late and repeated acks change nothing: a `received` without an alert id, `acknowledged` twice, acks of an alert already resolved', async () => {
    const id = 'btn-order-002'
    const { device, outputs } = await startDevice(id)
    device.press()
    const seq = device.lastSeq
    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 5000, 'LED blinking (received)')
    const alert = await alertOf(id)
    await act(alert.id, 'acknowledge')
    await eventually(async () => outputs.ledMode === 'steady' ? true : undefined, 5000, 'LED steady (acknowledged)')

    // A retried ingest's `duplicate` answer carries no alert id; a reconnecting gateway resends the state.
    await deliver(device, { seq, state: 'received' })
    await deliver(device, { seq, state: 'acknowledged', alertId: alert.id })
    expect(outputs.ledHistory).toEqual(['blinking', 'steady'])
    expect(outputs.sounds).toEqual(['received', 'acknowledged'])

    await act(alert.id, 'resolve', { outcome: 'real' })
    await eventually(async () => outputs.ledMode === 'off' ? true : undefined, 5000, 'LED off (resolved)')
    await deliver(device, { seq, state: 'received', alertId: alert.id })
    await deliver(device, { seq, state: 'acknowledged', alertId: alert.id })
    await deliver(device, { seq, state: 'received' })
    expect(outputs.ledHistory).toEqual(['blinking', 'steady', 'off'])
    expect(outputs.sounds).toEqual(['received', 'acknowledged', 'resolved'])

    // A new press is a new alert: it shows again.
    device.press()
    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 5000, 'LED blinking for the new alert')
    expect((await alertOf(id)).id).not.toBe(alert.id)
    // An ack of the old alert, late, is old news about an alert already over.
    await deliver(device, { seq, state: 'acknowledged', alertId: alert.id })
    expect(outputs.ledMode).toBe('blinking')
  })

  it('the states of a tamper alert never light the SOS light', async () => {
    const id = 'btn-order-003'
    const { device, outputs } = await startDevice(id)
    const acks: Ack[] = []
    device.on('ack', (ack) => acks.push(ack))
    device.tamper()
    const tamper = await alertOf(id, 'tamper')
    await act(tamper.id, 'acknowledge')
    device.tamper() // joins the acknowledged tamper alert: the gateway answers `received` and `acknowledged`
    await eventually(async () => acks.some((a) => a.state === 'acknowledged') ? true : undefined, 5000, 'the tamper alert\'s acknowledged')
    expect(acks.find((a) => a.state === 'acknowledged')).toMatchObject({ alertId: tamper.id })
    expect(outputs.ledHistory).toEqual([])
    expect(outputs.sounds).toEqual([])
  })

  it('a self-test that got through has a short cue of its own, then the light is off again', async () => {
    const id = 'btn-order-004'
    const { device, outputs } = await startDevice(id)
    device.test()
    await eventually(async () => outputs.ledHistory.length >= 2 ? true : undefined, 5000, 'the cue, then the light restored')
    expect(outputs.ledHistory).toEqual(['flash', 'off'])
    expect(outputs.sounds).toEqual(['self_test_ok'])
    expect(device.ledMode).toBe('off')
    expect((await system.api<any[]>('GET', `/v1/alerts?deviceId=${id}`)).body).toEqual([])
  })

  it('on a silent counter, a hold-up press after a self-test is seen to go through', async () => {
    const id = 'shop-order-001'
    const { device, outputs } = await startDevice(id, { kind: 'counter', pin: '4321' })
    device.test()
    await eventually(async () => outputs.ledHistory.length >= 2 ? true : undefined, 5000, 'the cue, then the light restored')
    expect(outputs.ledMode).toBe('off')
    device.press()
    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 5000, 'LED blinking for the press')
    expect(outputs.ledHistory).toEqual(['flash', 'off', 'blinking'])
    expect(outputs.sounds).toEqual([]) // silent, the cue too
  })

  it('a self-test while help is coming shows its cue, then the steady light again', async () => {
    const id = 'btn-order-005'
    const { device, outputs } = await startDevice(id)
    device.press()
    await act((await alertOf(id)).id, 'acknowledge')
    await eventually(async () => outputs.ledMode === 'steady' ? true : undefined, 5000, 'LED steady (acknowledged)')
    device.test()
    await eventually(async () => outputs.ledHistory.at(-2) === 'flash' ? true : undefined, 5000, 'the cue, then the light restored')
    expect(outputs.ledMode).toBe('steady')
    expect(device.ledMode).toBe('steady')
    expect(outputs.sounds.at(-1)).toBe('self_test_ok')
  })
})
