/**
 * `npm run bench`: the five measurements of bench/README.md on this machine, printed as a
 * table and written to bench/results/latest.json. Only 127.0.0.1 is ever contacted.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { benchSettings } from './lib/settings.js'
import { createScratchDatabase } from './lib/postgres.js'
import { launchGateway, launchServer, repoRoot } from './lib/processes.js'
import { provisionFleet } from './lib/fleet.js'
import { openFilesLimit } from './lib/proc.js'
import { round } from './lib/stats.js'
import { probeCommitLatency } from './lib/fsync-probe.js'
import { LoadPool } from './load/pool.js'
import { addStoredAtColumn, deviceConnections, runIngestStep, warmUp, type IngestStep } from './parts/ingest.js'
import { ephemeralPorts, runConnectionLevels } from './parts/connections.js'
import { runReference } from './parts/mosquitto.js'
import { runFlood, type FloodResult } from './parts/flood.js'
import { evaluateTargets, printReport, type BenchReport } from './report.js'

const settings = benchSettings()
const started = Date.now()
const loadAtStart = loadavg()
const say = (text: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${text}\n`)
const runId = randomBytes(3).toString('hex')
const dataDir = mkdtempSync(join(tmpdir(), 'sos-bench-'))
const adminToken = `admin_${randomBytes(12).toString('hex')}`
const gatewayToken = `gw_${randomBytes(12).toString('hex')}`
const cleanups: Array<() => Promise<unknown>> = []

try {
  const commit = probeCommitLatency(dataDir)
  say(`durable SQLite commit on the DATA_DIR disk: p50 ${commit.p50} ms, p99 ${commit.p99} ms`)
  const db = await createScratchDatabase('sos_bench')
  cleanups.push(() => db.drop())
  say(`database ${db.name}`)
  const server = await launchServer({ databaseUrl: db.url, dataDir: join(dataDir, 'server'), adminToken, gatewayToken })
  cleanups.push(() => server.stop())
  await addStoredAtColumn(db.pool)
  say(`server pid ${server.pid} on ${server.url}; provisioning ${settings.devices} devices`)
  const devices = await provisionFleet(server.url, adminToken, settings.devices, `bench-${runId}`)

  // Parts 1 and 2.
  let gateway = await launchGateway({ serverUrl: server.url, gatewayToken, dataDir: join(dataDir, 'gateway-ingest') })
  say(`gateway pid ${gateway.pid} on mqtt ${gateway.mqttPort}; connecting ${devices.length} devices from ${settings.workers} load processes`)
  const pool = LoadPool.start(settings.workers)
  const connected = await pool.connect(gateway.mqttPort, deviceConnections(devices, runId), 8)
  if (connected.failed > 0) throw new Error(`${connected.failed} devices could not connect: ${connected.firstError}`)
  if (settings.warmUpSeconds > 0) {
    say(`warm-up: ${settings.rates[0]}/s for ${settings.warmUpSeconds} s, not measured`)
    await warmUp({ pool, db: db.pool, rate: settings.rates[0]!, seconds: settings.warmUpSeconds, pressEvery: settings.pressEvery })
  }
  const ingest: IngestStep[] = []
  for (const [i, rate] of settings.rates.entries()) {
    const burst = i === settings.rates.length - 1 && settings.rates.length > 1
    const seconds = burst ? settings.burstSeconds : settings.sustainedSeconds
    say(`ingest ${rate}/s for ${seconds} s${burst ? ' (burst)' : ''}`)
    const step = await runIngestStep({ pool, db: db.pool, gatewayPid: gateway.pid, serverPid: server.pid, rate, seconds, burst, pressEvery: settings.pressEvery })
    say(`  accepted ${step.acceptedPerSec}/s, PUBACK p99 ${step.puback.p99} ms, stored ${step.stored}/${step.acked}, →stored p99 ${step.eventToStored.p99} ms (presses ${step.pressToStored.p99} ms), gateway ${step.gatewayCpuUsPerEvent} µs/event`)
    ingest.push(step)
  }
  await pool.close()
  await gateway.stop()

  // Part 3: a fresh gateway with the open-file limit raised as far as we are allowed.
  const wantFiles = 1_048_576
  gateway = await launchGateway({ serverUrl: server.url, gatewayToken, dataDir: join(dataDir, 'gateway-conns'), openFiles: wantFiles, inspect: true })
    .catch(() => launchGateway({ serverUrl: server.url, gatewayToken, dataDir: join(dataDir, 'gateway-conns'), inspect: true }))
  cleanups.push(() => gateway.stop())
  const gatewayOpenFiles = openFilesLimit(gateway.pid)
  const ports = ephemeralPorts()
  // A few descriptors stay for the gateway's own files, listeners and server connections.
  let max = Math.min(gatewayOpenFiles - 64, ports - 1500)
  if (settings.maxConnections > 0) max = Math.min(max, settings.maxConnections)
  const levels = settings.connectionLevels.filter((n) => n < max).map((n) => ({ target: n, label: String(n) }))
  levels.push({ target: max, label: 'max' })
  say(`connections: ${levels.map((l) => l.target).join(', ')} (gateway open-file limit ${gatewayOpenFiles}, ${ports} local ports)`)
  const connPool = LoadPool.start(Math.max(2, Math.ceil(max / 15_000)))
  const connections = await runConnectionLevels({ pool: connPool, gatewayPid: gateway.pid, mqttPort: gateway.mqttPort, devices, levels, inspectorUrl: gateway.inspectorUrl })
  for (const l of connections.levels) say(`  ${l.held} held, ${l.connectPerSec} connects/s, ${l.bytesPerConnection} bytes each (${l.bytesPerConnectionBeforeGc} before a full GC)${l.failed ? `, ${l.failed} failed: ${l.firstError}` : ''}`)
  await connPool.close()
  await gateway.stop()

  // Part 4.
  let reference: BenchReport['reference'] = []
  if (!settings.skipMosquitto) {
    say('reference: Mosquitto')
    const rates = settings.rates.map((rate, i) => ({ rate, seconds: i === settings.rates.length - 1 && settings.rates.length > 1 ? settings.burstSeconds : settings.sustainedSeconds }))
    reference = (await runReference({ rates, connections: settings.devices, workers: settings.workers })).steps
  }

  // Part 5: a fresh gateway with a ward's limits; one device floods, five others press. Twice:
  // with babbling connections shut down (the default), and without (what the flood itself costs).
  const flood: FloodResult[] = []
  if (settings.floodSeconds > 0) {
    for (const shutdown of [true, false]) {
      gateway = await launchGateway({ serverUrl: server.url, gatewayToken, dataDir: join(dataDir, `gateway-flood-${shutdown}`), wardLimits: true, env: shutdown ? {} : { BABBLING_REFUSALS: '0' } })
      say(`one device floods junk for ${settings.floodSeconds} s while five others press (a ward's limits; babbling connections ${shutdown ? 'shut down' : 'never shut down'})`)
      const result = await runFlood({ mqttPort: gateway.mqttPort, gatewayPid: gateway.pid, devices: devices.slice(0, 6), seconds: settings.floodSeconds, shutdown })
      say(`  ${result.floodPerSec} junk publishes/s written (let in ${result.connectsAccepted}, refused ${result.connectsRefused}); others' press PUBACK p99 ${result.before.puback.p99} ms alone, ${result.during.puback.p99} ms during, ${result.during.failed} failed`)
      flood.push(result)
      await gateway.stop()
    }
  }

  const cpuRatio = reference.flatMap((ref) => {
    const gw = ingest.find((s) => s.rate === ref.rate)
    return gw && ref.mosquittoCpuUsPerMessage > 0 ? [{ rate: ref.rate, ratio: round(gw.gatewayCpuUsPerEvent / ref.mosquittoCpuUsPerMessage) }] : []
  })

  const report: BenchReport = {
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: { ...machine(await postgresVersion(db.pool)), diskCommitMs: commit },
    settings: { ...settings },
    ingest,
    connections: { gatewayOpenFiles, ephemeralPorts: ports, ...connections },
    reference,
    cpuRatio,
    flood,
    targets: []
  }
  report.targets = evaluateTargets(report)
  const resultsDir = join(repoRoot, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  process.stdout.write('\n' + printReport(report) + '\n')
  say(`written to bench/results/latest.json (free memory now ${round(freemem() / 2 ** 30)} GB)`)
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => say(`cleanup: ${(err as Error).message}`))
  rmSync(dataDir, { recursive: true, force: true })
}

function machine (postgres: string): BenchReport['machine'] {
  let mosquitto: string | undefined
  try { mosquitto = execFileSync('mosquitto', ['-h'], { encoding: 'utf8' }).split('\n')[0] } catch (err) {
    mosquitto = String((err as { stdout?: string }).stdout ?? '').split('\n')[0] || undefined
  }
  return {
    cpus: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGB: round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    postgres,
    mosquitto,
    loadAverageAtStart: loadAtStart.map((x) => round(x, 2))
  }
}

async function postgresVersion (pool: import('pg').Pool): Promise<string> {
  const { rows } = await pool.query('SHOW server_version')
  return `PostgreSQL ${rows[0].server_version}`
}
