/**
 * Under steady QoS 1 load: a frozen and a slow subscriber, then the outbox's disk filling up
 * (the gateway's DATA_DIR on a small tmpfs we mount, with the server frozen by SIGSTOP so the
 * outbox must grow). Afterwards every PUBACKed event is stored exactly once; recovery printed.
 * The disk-full scenario needs root for the tmpfs mount (CI and this machine run as root);
 * without it the gateway's DATA_DIR is an ordinary folder and that scenario is skipped.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statfsSync, writeFileSync, appendFileSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RawClient } from '../../bench/lib/raw-mqtt.js'
import { topics } from '../../protocol/index.js'
import { exactlyOnce, startRig, type Rig } from './rig.js'
import { Fleet } from './fleet.js'
import { printRecoveries, type Recovery } from './report.js'
import { noMount, noPostgres, required } from './requirements.js'

const RATE = Number(process.env.FAULT_RATE || 200)
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const canMount = required('the fault suite', noPostgres) && required('the disk-full scenario', noMount)

describe.runIf(!noPostgres)(`degraded conditions under load (${RATE} events/s)`, () => {
  let rig: Rig
  let fleet: Fleet
  let mountPoint: string
  const recoveries: Recovery[] = []
  let refusedWrites = 0

  beforeAll(async () => {
    mountPoint = mkdtempSync(join(tmpdir(), 'sos-faults-disk-'))
    if (canMount) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint])
    rig = await startRig({ devices: 20, gatewayDataDir: join(mountPoint, 'gateway') })
    fleet = new Fleet(rig.mqttPort, rig.devices, `d${Date.now().toString(36)}`, 10)
    fleet.start(RATE)
    await fleet.nextAckAfter(Date.now())
  })

  afterAll(async () => {
    fleet?.stop()
    await rig?.stop()
    if (canMount) try { execFileSync('umount', ['-l', mountPoint]) } catch {}
    rmSync(mountPoint, { recursive: true, force: true })
  })

  /** The longest time without any PUBACK while `during` runs. */
  async function longestSilence (during: () => Promise<void>): Promise<number> {
    let worst = 0
    const timer = setInterval(() => { worst = Math.max(worst, Date.now() - fleet.lastAckAt) }, 50)
    try { await during() } finally { clearInterval(timer) }
    return worst
  }

  it('keeps accepting from every other device while a subscriber is frozen, then slow', async () => {
    const device = rig.devices[0]!
    const frozen = await RawClient.connect({ port: rig.mqttPort, clientId: `${device.id}:frozen`, username: device.id, password: device.secret })
    await frozen.subscribe(topics.ack(device.id), 1)
    frozen.socket.pause() // stops reading: the gateway's writes to it back up
    const frozenGap = await longestSilence(() => pause(12_000))
    frozen.destroy()
    recoveries.push({ fault: 'frozen subscriber 12 s: longest PUBACK gap', recoveryMs: frozenGap })

    const slow = await RawClient.connect({ port: rig.mqttPort, clientId: `${device.id}:slow`, username: device.id, password: device.secret })
    await slow.subscribe(topics.ack(device.id), 1)
    const slowGap = await longestSilence(async () => {
      for (let i = 0; i < 10; i++) {
        slow.socket.pause()
        await pause(500)
        slow.socket.resume()
        await pause(20)
      }
    })
    slow.destroy()
    recoveries.push({ fault: 'slow subscriber 5 s: longest PUBACK gap', recoveryMs: slowGap })
    expect(rig.gateway.child.exitCode).toBeNull()
  })

  it.runIf(canMount)('refuses (no PUBACK) while the outbox disk is full, and resumes once there is space', async () => {
    rig.gateway.child.stdout!.on('data', (chunk: Buffer) => {
      // One log line a second, then one saying how many more failed in that second.
      for (const line of chunk.toString().split('\n')) {
        if (!line.includes('could not be stored')) continue
        refusedWrites += Number(/"notLogged":(\d+)/.exec(line)?.[1]) || 1
      }
    })
    // The server frozen: nothing leaves the outbox, so it must grow into the full disk.
    rig.server.child.kill('SIGSTOP')
    const filler = join(mountPoint, 'filler')
    try {
      const { bavail, bsize } = statfsSync(mountPoint)
      writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 64 * 1024)))
      try { for (;;) appendFileSync(filler, Buffer.alloc(4096)) } catch {}
      const fullAt = Date.now()
      // Wait until writes fail (bounded), then a little longer under refusal.
      while (refusedWrites === 0 && Date.now() - fullAt < 30_000) await pause(100)
      await pause(2000)
    } finally {
      unlinkSync(filler)
      rig.server.child.kill('SIGCONT')
    }
    const freedAt = Date.now()
    const resumed = await fleet.nextAckAfter(freedAt)
    recoveries.push({ fault: 'outbox disk full → first PUBACK after freeing', recoveryMs: resumed - freedAt })
    expect(refusedWrites, 'the gateway never reported a failed outbox write: the disk did not fill').toBeGreaterThan(0)
    expect(rig.gateway.child.exitCode).toBeNull()
  })

  it('has stored every PUBACKed event exactly once', async () => {
    const unacked = await fleet.drain()
    expect(unacked).toBe(0)
    const result = await exactlyOnce(rig, fleet.acked, fleet.boots)
    printRecoveries(`degraded conditions (${refusedWrites} refused outbox writes)`, recoveries, { acked: fleet.acked.size, lost: result.lost.length, duplicated: result.duplicated.length, extra: result.extra })
    expect(result.lost).toEqual([])
    expect(result.duplicated).toEqual([])
    expect(await rig.miscountedPresses(fleet.boots)).toEqual([])
  })
})
