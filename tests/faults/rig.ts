/**
 * The system as separate processes on a scratch PostgreSQL database, for fault injection:
 * the server and the gateway can be killed with SIGKILL, frozen with SIGSTOP, and restarted
 * on the same ports and data (the gateway's outbox survives in its DATA_DIR).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createScratchDatabase, type ScratchDatabase } from '../../bench/lib/postgres.js'
import { launchGateway, launchServer, type Launched } from '../../bench/lib/processes.js'
import { provisionFleet, type DeviceCredentials } from '../../bench/lib/fleet.js'

export interface Rig {
  db: ScratchDatabase
  server: Launched
  gateway: Launched
  serverUrl: string
  mqttPort: number
  devices: DeviceCredentials[]
  /** SIGKILL then start again on the same port (and for the gateway the same DATA_DIR). */
  restartServer(signal?: NodeJS.Signals): Promise<void>
  restartGateway(signal?: NodeJS.Signals): Promise<void>
  /** Stored rows per event id for these boots. */
  storedCounts(boots: string[]): Promise<Map<string, number>>
  /**
   * Devices whose panic alerts do not count their stored presses once each: the presses of
   * these boots stored per device, against the press counts of that device's alerts.
   */
  miscountedPresses(boots: string[]): Promise<Array<{ deviceId: string, stored: number, counted: number }>>
  stop(): Promise<void>
}

/** FAULT_VERBOSE=1: the processes' warnings and errors on our stdout, to see what a failure was. */
function echoWarnings<T extends Launched> (name: string, launched: T): T {
  if (!process.env.FAULT_VERBOSE) return launched
  launched.child.stdout!.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (/"level":[456]0/.test(line)) process.stdout.write(`${name}: ${line.slice(0, 400)}\n`)
  })
  launched.child.stderr!.on('data', (chunk: Buffer) => process.stdout.write(`${name} stderr: ${chunk.toString().slice(0, 2000)}`))
  return launched
}

export async function startRig (options: { devices: number, gatewayDataDir?: string }): Promise<Rig> {
  const db = await createScratchDatabase('sos_faults')
  const dir = mkdtempSync(join(tmpdir(), 'sos-faults-'))
  const adminToken = `admin_${randomBytes(12).toString('hex')}`
  const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
  const gatewayDataDir = options.gatewayDataDir ?? join(dir, 'gateway')
  const serverOptions = { databaseUrl: db.url, dataDir: join(dir, 'server'), adminToken, gatewayToken }

  const firstServer = echoWarnings('server', await launchServer(serverOptions))
  const serverUrl = firstServer.url
  const firstGateway = echoWarnings('gateway', await launchGateway({ serverUrl, gatewayToken, dataDir: gatewayDataDir }))
  const mqttPort = firstGateway.mqttPort
  const devices = await provisionFleet(serverUrl, adminToken, options.devices, `flt-${randomBytes(2).toString('hex')}`)

  const rig: Rig = {
    db,
    server: firstServer,
    gateway: firstGateway,
    serverUrl,
    mqttPort,
    devices,
    async restartServer (signal = 'SIGKILL') {
      await rig.server.stop(signal)
      rig.server = echoWarnings('server', await launchServer({ ...serverOptions, httpPort: firstServer.port }))
    },
    async restartGateway (signal = 'SIGKILL') {
      await rig.gateway.stop(signal)
      rig.gateway = echoWarnings('gateway', await launchGateway({ serverUrl, gatewayToken, dataDir: gatewayDataDir, mqttPort }))
    },
    async storedCounts (boots) {
      const { rows } = await db.pool.query<{ event_id: string, n: number }>(
        'SELECT event_id, count(*)::int AS n FROM events WHERE boot = ANY($1) GROUP BY event_id', [boots])
      return new Map(rows.map((r) => [r.event_id, r.n]))
    },
    async miscountedPresses (boots) {
      const { rows } = await db.pool.query<{ device_id: string, stored: number, counted: number }>(`
        SELECT p.device_id, p.stored, COALESCE(a.counted, 0)::int AS counted
        FROM (SELECT device_id, count(DISTINCT event_id)::int AS stored FROM events WHERE type = 'press' AND boot = ANY($1) GROUP BY device_id) p
        LEFT JOIN (SELECT device_id, sum(press_count)::int AS counted FROM alerts WHERE kind = 'panic' GROUP BY device_id) a USING (device_id)
        WHERE p.stored IS DISTINCT FROM a.counted`, [boots])
      return rows.map((r) => ({ deviceId: r.device_id, stored: r.stored, counted: r.counted }))
    },
    async stop () {
      await rig.gateway.stop('SIGTERM').catch(() => {})
      await rig.server.stop('SIGTERM').catch(() => {})
      await db.drop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return rig
}

/** Every PUBACKed event stored exactly once: what the fault suite asserts after each scenario. */
export async function exactlyOnce (rig: Rig, acked: Set<string>, boots: string[], timeoutMs = 120_000): Promise<{ lost: string[], duplicated: string[], extra: number, waitedMs: number }> {
  const started = Date.now()
  let counts = await rig.storedCounts(boots)
  const missing = () => [...acked].filter((id) => !counts.has(id))
  while (missing().length > 0 && Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    counts = await rig.storedCounts(boots)
  }
  return {
    lost: missing(),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    // Stored but never PUBACKed (the gateway stored it, then died before answering): allowed.
    extra: [...counts.keys()].filter((id) => !acked.has(id)).length,
    waitedMs: Date.now() - started
  }
}
