/**
 * The device's heartbeat and the gateway's supervision agree by default: each kind's period
 * (firmware-sim/device/kinds.ts) against the gateway's default interval for it
 * (gateway/config.ts), first beat included. A counter beating every 60 s against the gateway's
 * 30 s default was reported offline about once a minute while healthy and connected.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_HEARTBEAT_INTERVALS_MS } from '../../gateway/config.js'
import { openStateDb, type StateDb } from '../../gateway/state-db.js'
import { PresenceLog } from '../../gateway/presence-log.js'
import { StateWriter } from '../../gateway/state-writer.js'
import { Supervisor } from '../../gateway/supervisor.js'
import { createGatewayMetrics } from '../../gateway/metrics.js'
import { DEVICE_KINDS, firstHeartbeatDelay, KIND_PROFILES } from '../../firmware-sim/device/kinds.js'
import { Device } from '../../firmware-sim/device/device.js'
import { RecordedOutputs } from '../../firmware-sim/device/outputs.js'
import { simHeartbeatMs } from '../../firmware-sim/sim/run.js'
import { quietLog, startSystem, type TestSystem } from '../helpers/system.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('each kind\'s heartbeat against the gateway\'s default supervision (fake timers)', () => {
  let dir: string
  let db: StateDb
  let writer: StateWriter
  let presence: PresenceLog
  let supervisor: Supervisor

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 })
    dir = mkdtempSync(join(tmpdir(), 'sos-hb-'))
    db = openStateDb(dir)
    writer = new StateWriter(db.name, quietLog)
    presence = new PresenceLog(db, writer)
    supervisor = new Supervisor({ gatewayId: 'gw-unit', heartbeatIntervalsMs: DEFAULT_HEARTBEAT_INTERVALS_MS, reconnectGraceMs: 5_000 },
      presence, () => {}, createGatewayMetrics(), quietLog)
    supervisor.start()
  })

  afterEach(async () => {
    supervisor.stop()
    vi.useRealTimers()
    await writer.close()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it.each(DEVICE_KINDS)('a %s beating at its default period, its first beat as late as it can be, is never reported offline', (kind) => {
    const periodMs = KIND_PROFILES[kind].heartbeatMs
    const intervalMs = DEFAULT_HEARTBEAT_INTERVALS_MS[kind]
    const id = `${kind}-hb`
    // As the device does (device.ts): a first beat at a random phase, then one every period.
    supervisor.connected(id, kind)
    const beat = () => { supervisor.seen(id, kind); setTimeout(beat, periodMs) }
    setTimeout(beat, firstHeartbeatDelay(periodMs, () => 0.999999))
    const states: string[] = []
    for (let t = 0; t < 10 * intervalMs; t += 1000) {
      vi.advanceTimersByTime(1000)
      states.push(supervisor.stateOf(id)!)
    }
    presence.flush()
    expect(presence.peek(100).map((p) => p.change.state)).toEqual(['online'])
    expect(new Set(states)).toEqual(new Set(['online']))
  })

  it('the simulator\'s heartbeats stay within the gateway\'s default interval however long it runs (unless --rate says otherwise)', () => {
    for (const kind of DEVICE_KINDS) {
      for (const duration of [30, 600, 3600, 0]) {
        expect(simHeartbeatMs(kind, 40, { duration }), `${kind}, --duration ${duration}`).toBeLessThanOrEqual(DEFAULT_HEARTBEAT_INTERVALS_MS[kind])
      }
    }
  })

  it('a first beat is always drawn within one period', () => {
    for (const random of [0, 0.5, 0.999999, 1]) expect(firstHeartbeatDelay(30_000, () => random)).toBeLessThanOrEqual(30_000)
  })
})

describe('default-configured devices against a default-configured gateway', () => {
  let system: TestSystem
  let stateDir: string
  const devices: Device[] = []

  beforeAll(async () => {
    // No heartbeat setting anywhere: the gateway's defaults (HEARTBEAT_INTERVAL_S unset).
    system = await startSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-hb-state-'))
  }, 120_000)

  afterAll(async () => {
    for (const device of devices) await device.stop()
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  it('a button, a kiosk and a counter stay online across two intervals, with no device_offline alert', async () => {
    for (const kind of DEVICE_KINDS) {
      const id = `${kind}-hb-default`
      const secret = await system.provision(id, { kind })
      // Only what a deployed device must be told: no heartbeat period, no backoff.
      const device = new Device({ id, secret, kind, zone: 'apd-1', mqttUrl: system.mqttUrl, stateDir }, new RecordedOutputs())
      devices.push(device)
      device.start()
    }
    const ids = devices.map((d) => d.id)
    const notOnline = new Set<string>()
    // Two intervals: a device beating at twice the interval is reported offline within 1.5 of
    // them (and its first beat may come as late as one period), so this sees it; the fake-timer
    // tests above walk ten intervals of each kind.
    const until = Date.now() + 2 * Math.max(...Object.values(DEFAULT_HEARTBEAT_INTERVALS_MS)) + 5_000
    await sleep(1000) // connecting
    while (Date.now() < until) {
      for (const id of ids) if (system.gateway.supervisor.stateOf(id) !== 'online') notOnline.add(id)
      await sleep(250)
    }
    expect([...notOnline]).toEqual([])
    const { body: offline } = await system.api<any[]>('GET', '/v1/alerts?kind=device_offline')
    expect(offline.filter((a) => ids.includes(a.deviceId))).toEqual([])
    // They were kept online by their heartbeats, at least two each.
    for (const id of ids) {
      const { body: beats } = await system.api<any[]>('GET', `/v1/events?deviceId=${id}&type=heartbeat`)
      expect(beats.length, id).toBeGreaterThanOrEqual(2)
    }
  }, 180_000)
})
