/**
 * The supervisor's timing rules with fake timers (production intervals, no waiting): offline
 * within 2 heartbeat intervals of the last event, dropped connections after the reconnect
 * grace, no outage for a reconnect inside the grace, and restart picking up where it was.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { openStateDb, type StateDb } from '../../gateway/state-db.js'
import { PresenceLog } from '../../gateway/presence-log.js'
import { StateWriter } from '../../gateway/state-writer.js'
import { Supervisor } from '../../gateway/supervisor.js'
import { createGatewayMetrics } from '../../gateway/metrics.js'
import { quietLog } from '../helpers/system.js'

const INTERVAL = 30_000

describe('supervisor', () => {
  let dir: string
  let db: StateDb
  let writer: StateWriter
  let log: PresenceLog
  let statuses: Array<[string, string]>
  let supervisor: Supervisor

  const make = () => new Supervisor({ gatewayId: 'gw-unit', heartbeatIntervalsMs: { button: INTERVAL, kiosk: INTERVAL, counter: 60_000 }, reconnectGraceMs: 5_000 },
    log, (topic, status) => statuses.push([topic, status]), createGatewayMetrics(), quietLog)
  // Changes are written once per event-loop turn; flush to read them now.
  const changes = () => { log.flush(); return log.peek(100).map((p) => [p.change.deviceId, p.change.state, p.change.reason, p.change.at]) }

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 })
    dir = mkdtempSync(join(tmpdir(), 'sos-sup-'))
    db = openStateDb(dir)
    writer = new StateWriter(db.name, quietLog)
    log = new PresenceLog(db, writer)
    statuses = []
    supervisor = make()
    supervisor.start()
  })

  afterEach(async () => {
    supervisor.stop()
    vi.useRealTimers()
    await writer.close()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('reports a silent device offline within 2 intervals of its last event, and online when heard again', () => {
    supervisor.connected('btn-1', 'button')
    vi.advanceTimersByTime(10_000)
    supervisor.seen('btn-1', 'button')
    const lastHeard = Date.now()
    vi.advanceTimersByTime(2 * INTERVAL)
    const offline = changes().find((c) => c[1] === 'offline')!
    expect(offline.slice(0, 3)).toEqual(['btn-1', 'offline', 'heartbeat_missed'])
    expect(offline[3] as number - lastHeard).toBeLessThanOrEqual(2 * INTERVAL)
    expect(offline[3] as number - lastHeard).toBeGreaterThan(INTERVAL)
    supervisor.seen('btn-1', 'button')
    expect(changes().at(-1)!.slice(0, 3)).toEqual(['btn-1', 'online', 'connected'])
    expect(statuses).toEqual([['sos/v1/btn-1/status', 'online'], ['sos/v1/btn-1/status', 'offline'], ['sos/v1/btn-1/status', 'online']])
  })

  it('keeps a device that heartbeats on time online', () => {
    supervisor.connected('btn-2', 'button')
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(INTERVAL)
      supervisor.seen('btn-2', 'button')
    }
    expect(changes().map((c) => c[1])).toEqual(['online'])
  })

  it('uses each kind\'s interval', () => {
    supervisor.connected('ctr-1', 'counter')
    vi.advanceTimersByTime(2 * INTERVAL)
    expect(supervisor.stateOf('ctr-1')).toBe('online')
    vi.advanceTimersByTime(2 * INTERVAL)
    expect(supervisor.stateOf('ctr-1')).toBe('offline')
  })

  it('reports a dropped connection after the grace, with its reason', () => {
    supervisor.connected('btn-3', 'button')
    supervisor.disconnected('btn-3', 'will')
    vi.advanceTimersByTime(4_000)
    expect(supervisor.stateOf('btn-3')).toBe('online')
    vi.advanceTimersByTime(10_000)
    expect(changes().at(-1)!.slice(0, 3)).toEqual(['btn-3', 'offline', 'will'])
  })

  it('reports a dropped connection when its grace ends, however long the heartbeat interval', () => {
    // A button whose power was cut, its will fired: looked at only every quarter interval, it
    // showed offline up to 7.5 s past the grace at 30 s, 15 minutes at an hour (review 72).
    supervisor.stop()
    supervisor = new Supervisor({ gatewayId: 'gw-unit', heartbeatIntervalsMs: { button: 3_600_000 }, reconnectGraceMs: 5_000 },
      log, (topic, status) => statuses.push([topic, status]), createGatewayMetrics(), quietLog)
    supervisor.start()
    supervisor.connected('btn-6', 'button')
    vi.advanceTimersByTime(1_000)
    supervisor.disconnected('btn-6', 'will')
    vi.advanceTimersByTime(4_900)
    expect(supervisor.stateOf('btn-6')).toBe('online')
    vi.advanceTimersByTime(100)
    expect(changes().at(-1)!.slice(0, 3)).toEqual(['btn-6', 'offline', 'will'])
    // A street dropping over a few seconds: each reported within a quarter second of its grace's
    // end, in a few passes, not one per device.
    const dropped = Array.from({ length: 40 }, (_, i) => `btn-street-${i}`)
    for (const id of dropped) supervisor.connected(id, 'button')
    const droppedAt = new Map<string, number>()
    for (const id of dropped) {
      vi.advanceTimersByTime(50)
      supervisor.disconnected(id, 'disconnected')
      droppedAt.set(id, Date.now())
    }
    vi.advanceTimersByTime(6_000)
    const offline = changes().filter((c) => dropped.includes(c[0] as string) && c[1] === 'offline')
    expect(offline).toHaveLength(dropped.length)
    for (const [id, state, reason, at] of offline) {
      expect([state, reason]).toEqual(['offline', 'disconnected'])
      expect(at as number - droppedAt.get(id as string)! - 5_000).toBeGreaterThanOrEqual(0)
      expect(at as number - droppedAt.get(id as string)! - 5_000).toBeLessThanOrEqual(250)
    }
    expect(new Set(offline.map((c) => c[3])).size).toBeLessThanOrEqual(Math.ceil(40 * 50 / 250) + 1)
  })

  it('does not report a reconnect inside the grace (session takeover, quick reboot)', () => {
    supervisor.connected('btn-4', 'button')
    supervisor.disconnected('btn-4', 'disconnected')
    vi.advanceTimersByTime(1_000)
    supervisor.connected('btn-4', 'button')
    vi.advanceTimersByTime(20_000)
    expect(changes().map((c) => c[1])).toEqual(['online'])
  })

  it('after a restart, reports a device that was online and never came back', async () => {
    supervisor.connected('btn-5', 'button')
    supervisor.stop()
    vi.advanceTimersByTime(10 * 60_000)
    // The gateway restarts: what the writer saved is read back.
    await writer.flushed()
    log = new PresenceLog(db, writer)
    supervisor = make()
    supervisor.start()
    expect(supervisor.stateOf('btn-5')).toBe('online')
    vi.advanceTimersByTime(2 * INTERVAL)
    expect(changes().at(-1)!.slice(0, 3)).toEqual(['btn-5', 'offline', 'heartbeat_missed'])
  })
  it('measures silence on the monotonic clock: the wall clock set forward or back changes nothing', () => {
    // A gateway booted on a stale clock, then set by NTP. Stepped forward two minutes, every
    // heartbeating device was reported offline at once; stepped back an hour, a dead one was
    // reported an hour late. (Its report's date the server puts on its own clock: ingest.ts.)
    supervisor.stop()
    let step = 0
    supervisor = new Supervisor({ gatewayId: 'gw-unit', heartbeatIntervalsMs: { button: INTERVAL }, reconnectGraceMs: 5_000 },
      log, (topic, status) => statuses.push([topic, status]), createGatewayMetrics(), quietLog, () => Date.now() + step)
    supervisor.start()
    for (const id of ['btn-alive', 'btn-dead']) supervisor.connected(id, 'button')
    vi.advanceTimersByTime(INTERVAL / 2)
    step = 2 * 60_000
    supervisor.seen('btn-alive', 'button')
    supervisor.seen('btn-dead', 'button')
    vi.advanceTimersByTime(INTERVAL / 2)
    supervisor.seen('btn-alive', 'button')
    supervisor.check()
    expect(changes().filter((c) => c[1] === 'offline')).toEqual([])

    step = -3600_000
    for (let t = 0; t < 2 * INTERVAL; t += INTERVAL / 2) {
      vi.advanceTimersByTime(INTERVAL / 2)
      supervisor.seen('btn-alive', 'button')
    }
    expect(changes().filter((c) => c[1] === 'offline').map((c) => c.slice(0, 3))).toEqual([['btn-dead', 'offline', 'heartbeat_missed']])
    expect(supervisor.stateOf('btn-alive')).toBe('online')
  })
})
