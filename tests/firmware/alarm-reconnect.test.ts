/**
 * An alarm does not wait out the reconnect backoff (DESIGN.md §1: the button shows within a
 * second that the press was received). Through a real TCP proxy that cuts the link, against
 * the real gateway and server. The devices' backoff waits ten minutes after a drop (the jitter
 * fixed at its ceiling), so a press gets through within the test only if it cut that wait short.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { eventually } from '../helpers/system.js'
import { startRestartableSystem, type RestartableSystem } from './restartable-system.js'
import { startSwitchableLink, type SwitchableLink } from './switchable-link.js'
import { Device } from '../../firmware-sim/device/device.js'
import { RecordedOutputs } from '../../firmware-sim/device/outputs.js'

const TEN_MINUTES = 600_000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('an alarm queued while the link is down', () => {
  let system: RestartableSystem
  let link: SwitchableLink
  let stateDir: string
  let device: Device | undefined

  beforeAll(async () => {
    system = await startRestartableSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-fw-alarm-'))
  }, 120_000)

  afterEach(async () => {
    await device?.stop()
    device = undefined
    await link?.close()
  })

  afterAll(async () => {
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  /** A button behind the switchable link whose routine reconnects wait ten minutes. */
  const buttonBehindLink = async (id: string) => {
    link = await startSwitchableLink(system.mqttPort)
    const outputs = new RecordedOutputs()
    device = new Device({
      id, secret: await system.provision(id), kind: 'button', zone: 'apd-1', mqttUrl: link.url, stateDir,
      heartbeatMs: 3_600_000, backoff: { baseMs: TEN_MINUTES, maxMs: TEN_MINUTES, random: () => 1 }
    }, outputs)
    device.start()
    await once(device, 'connected')
    return { device, outputs }
  }

  const cut = async (d: Device) => {
    const dropped = once(d, 'disconnected')
    link.cut()
    await dropped
  }

  it('a press made once the link is back reconnects at once instead of after the backoff wait', async () => {
    const { device, outputs } = await buttonBehindLink('btn-alarm-001')
    await cut(device)
    link.restore()
    await sleep(300)
    expect(device.connected).toBe(false) // the routine reconnect is ten minutes away

    const before = link.attempts
    device.press()
    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 15_000, 'press received')
    expect(link.attempts - before).toBe(1)
    expect(outputs.sounds).toEqual(['received'])
  })

  it('a press made during the outage keeps retrying at an alarm\'s pace, without a connect per press, and gets through once the link is back', async () => {
    const { device, outputs } = await buttonBehindLink('btn-alarm-002')
    await cut(device)
    const before = link.attempts
    for (let i = 0; i < 20; i++) device.press()
    await sleep(1500)
    // The first press tried at once; the other nineteen added nothing, and the next try is an
    // alarm's wait away (5 s at most), not one per press.
    expect(link.attempts - before).toBe(1)
    await eventually(async () => link.attempts - before >= 2 ? true : undefined, 15_000, 'a second attempt at an alarm\'s pace')

    link.restore()
    await eventually(async () => outputs.ledMode === 'blinking' ? true : undefined, 15_000, 'presses received')
    await eventually(async () => device.queued === 0 ? true : undefined, 10_000, 'every press sent')
    const presses = (await system.api<any[]>('GET', '/v1/events?deviceId=btn-alarm-002&type=press')).body
    expect(presses).toHaveLength(20)
  })

  it('keeps one connection attempt in flight at a time: presses while one hangs open no others', async () => {
    const { device } = await buttonBehindLink('btn-alarm-003')
    const dropped = once(device, 'disconnected')
    link.blackhole()
    await dropped
    const before = link.attempts
    for (let i = 0; i < 20; i++) {
      device.press()
      await sleep(100)
    }
    expect(link.attempts - before).toBe(1) // accepted, never answered: still in flight
  })

  it('routine events keep the backoff: a heartbeat or test queued during the outage does not reconnect', async () => {
    const { device } = await buttonBehindLink('btn-alarm-004')
    await cut(device)
    link.restore()
    const before = link.attempts
    device.test()
    await sleep(1500)
    expect(link.attempts - before).toBe(0)
    expect(device.connected).toBe(false)
  })
})
