/**
 * A state the gateway tells again (gateway/ack-replay.ts) from a device's previous boot (acks
 * carry seq but no boot) is not news under a new boot, whose seqs start again: the device took
 * the old alert's `resolved` (seq 2) and then ignored every state of its new alarm (seq 0 < 2).
 * Found by review. The gateway is restarted in between, so aedes' own session queue is gone:
 * what the device hears after the reboot comes from the replay alone.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { Device } from '../../firmware-sim/device/device.js'
import { RecordedOutputs } from '../../firmware-sim/device/outputs.js'
import type { Ack } from '../../protocol/index.js'

let system: TestSystem
const dirs: string[] = []
const devices: Device[] = []
beforeAll(async () => { system = await startSystem({ gateway: { downlinkWaitMs: 300 } }) })
afterAll(async () => {
  for (const d of devices) await d.stop().catch(() => {})
  await system?.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

function makeDevice (id: string, secret: string) {
  const stateDir = mkdtempSync(join(tmpdir(), 'sos-fw-replay-')); dirs.push(stateDir) // a fresh flash: new boot, seq from the start
  const outputs = new RecordedOutputs()
  const device = new Device({ id, secret, kind: 'button', zone: 'apd-1', mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 } }, outputs)
  const acks: Ack[] = []
  device.on('ack', (a) => acks.push(a))
  devices.push(device)
  return { device, outputs, acks }
}

it('a device started under a new boot takes no told-again state of an old alert, and follows its new alarm', async () => {
  const id = 'btn-r44-stale'
  const secret = await system.provision(id)
  // Boot 1: three presses (one alert, last seq 2), heard `received`.
  const one = makeDevice(id, secret)
  one.device.start(); await once(one.device, 'connected')
  one.device.press(); one.device.press(); one.device.press()
  await eventually(async () => one.acks.filter((a) => a.state === 'received').length === 3 || undefined, 10_000, 'three received')
  const oldAlert = one.acks[0]!.alertId!
  // Power cut (battery swap, outage): the device is away while the operator closes the alert.
  await one.device.powerCut()
  await pause(300)
  expect((await system.api('POST', `/v1/alerts/${oldAlert}/acknowledge`, {})).status).toBe(200)
  expect((await system.api('POST', `/v1/alerts/${oldAlert}/resolve`, { outcome: 'real', note: 'done' })).status).toBe(200)
  await pause(1500)
  await system.restartGateway() // aedes' in-memory session (and its queue) is gone now
  await pause(800)

  // Boot 2: flash lost, new boot id, seq starts over. Nothing is open for this device.
  const two = makeDevice(id, secret)
  two.device.start(); await once(two.device, 'connected')
  await pause(1500)

  // A real emergency now.
  two.device.press()
  const received = await eventually(async () => two.acks.find((a) => a.state === 'received' && a.alertId !== oldAlert), 10_000, 'received of the new alert')
  await pause(300)
  expect((await system.api('POST', `/v1/alerts/${received.alertId}/acknowledge`, {})).status).toBe(200)
  await eventually(async () => two.acks.find((a) => a.state === 'acknowledged' && a.alertId === received.alertId), 10_000, 'acknowledged of the new alert')
  await pause(300)
  // What the pedestrian must see: blinking on received, steady "help is coming" once acknowledged.
  expect(two.outputs.sounds).toContain('acknowledged')
  expect(two.outputs.ledMode).toBe('steady')
})
