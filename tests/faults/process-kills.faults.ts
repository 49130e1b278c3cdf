/**
 * Under steady QoS 1 load: kill -9 the gateway FAULT_KILLS times, kill -9 the server
 * FAULT_KILLS times, cut the server's PostgreSQL connections; afterwards every PUBACKed event
 * is stored exactly once, and every stored press counted once by its alert (one event in ten
 * is a press, through the alarm lane). Recovery times are printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { terminateBackends } from '../../bench/lib/postgres.js'
import { exactlyOnce, startRig, type Rig } from './rig.js'
import { Fleet } from './fleet.js'
import { printRecoveries, type Recovery } from './report.js'
import { noPostgres, required } from './requirements.js'

const KILLS = Number(process.env.FAULT_KILLS || 20)
const RATE = Number(process.env.FAULT_RATE || 200)
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.runIf(required('the fault suite', noPostgres))(`kill -9 under load (${KILLS} kills of each process, ${RATE} events/s)`, () => {
  let rig: Rig
  let fleet: Fleet
  const recoveries: Recovery[] = []

  beforeAll(async () => {
    rig = await startRig({ devices: 20 })
    fleet = new Fleet(rig.mqttPort, rig.devices, `k${Date.now().toString(36)}`, 10)
    fleet.start(RATE)
    await fleet.nextAckAfter(Date.now())
  })

  afterAll(async () => {
    fleet?.stop()
    await rig?.stop()
  })

  it(`recovers from ${KILLS} gateway kills: the flow of PUBACKs resumes after each`, async () => {
    for (let i = 0; i < KILLS; i++) {
      await pause(300 + Math.random() * 700)
      const killedAt = Date.now()
      await rig.restartGateway('SIGKILL')
      recoveries.push({ fault: 'gateway kill -9 → first PUBACK', recoveryMs: await fleet.nextAckAfter(killedAt) - killedAt })
    }
  })

  it(`recovers from ${KILLS} server kills: the gateway keeps accepting, the backlog is stored`, async () => {
    for (let i = 0; i < KILLS; i++) {
      await pause(300 + Math.random() * 700)
      const killedAt = Date.now()
      const ackedBefore = [...fleet.acked]
      await rig.restartServer('SIGKILL')
      // Back = every event PUBACKed before the kill is in PostgreSQL.
      const check = await exactlyOnce(rig, new Set(ackedBefore), fleet.boots, 60_000)
      expect(check.lost).toEqual([])
      recoveries.push({ fault: 'server kill -9 → backlog stored', recoveryMs: Date.now() - killedAt })
    }
  })

  // Found by this suite: a connection cut while a transaction holds it crashes the server
  // process (an 'error' event on a checked-out pg client has no listener), and close-with-grace
  // exits 10 s later. We restart it as a supervisor would, so the exactly-once verdict below
  // still covers these cuts, and count the crashes separately.
  it('survives cut PostgreSQL connections (pg_terminate_backend) without the server process dying', async () => {
    let crashes = 0
    for (let i = 0; i < 5; i++) {
      await pause(500)
      const cutAt = Date.now()
      const ackedBefore = new Set(fleet.acked)
      await terminateBackends(rig.db.name)
      const died = rig.server.exited.then(() => 'died' as const)
      const outcome = await Promise.race([exactlyOnce(rig, ackedBefore, fleet.boots, 60_000), died])
      if (outcome === 'died') {
        crashes++
        await rig.restartServer('SIGKILL')
        const check = await exactlyOnce(rig, ackedBefore, fleet.boots, 60_000)
        expect(check.lost).toEqual([])
        recoveries.push({ fault: 'pg_terminate_backend → server died, restarted', recoveryMs: Date.now() - cutAt })
        continue
      }
      expect(outcome.lost).toEqual([])
      recoveries.push({ fault: 'pg_terminate_backend → backlog stored', recoveryMs: Date.now() - cutAt })
    }
    expect(crashes, 'server process exits after pg_terminate_backend').toBe(0)
  })

  it('has stored every PUBACKed event exactly once', async () => {
    const unacked = await fleet.drain()
    expect(unacked).toBe(0)
    const result = await exactlyOnce(rig, fleet.acked, fleet.boots)
    printRecoveries('kill -9 and cut connections', recoveries, { acked: fleet.acked.size, lost: result.lost.length, duplicated: result.duplicated.length, extra: result.extra })
    expect(result.lost).toEqual([])
    expect(result.duplicated).toEqual([])
    // A press sent again (after a kill, before its answer) joins its alert once, not twice.
    expect(await rig.miscountedPresses(fleet.boots)).toEqual([])
    expect(recoveries.filter((r) => r.fault.startsWith('gateway')).length).toBe(KILLS)
    expect(recoveries.filter((r) => r.fault.startsWith('server')).length).toBe(KILLS)
  })
})
