/**
 * One simulator run: provision (or load) the fleet, connect it, play the scenario with
 * heartbeats underneath, print a live summary, drain, stop. Returns the exit code:
 * 0 when every device connected and nothing was refused, 1 otherwise.
 */
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import { Device } from '../device/device.js'
import { KIND_PROFILES, type DeviceKind } from '../device/kinds.js'
import { RecordedOutputs, type ScreenMessage } from '../device/outputs.js'
import { planFleet } from './fleet-plan.js'
import { loadFleet, provisionFleet, saveFleet, ProvisionError, type FleetMember } from './provision.js'
import { SCENARIO_STEPS, type SimDevice } from './scenarios.js'
import { SimStats } from './stats.js'
import { SimOperator } from './operator.js'
import { UsageError, type SimOptions } from './options.js'

/** With --duration 0 the scenario repeats in cycles of this length until interrupted. */
const ENDLESS_CYCLE_MS = 600_000

export interface SimOutput {
  log(line: string): void
  /** The live summary line (a TTY overwrites it in place). */
  status(line: string): void
}

export async function runSim (options: SimOptions, out: SimOutput, stopSignal: AbortSignal): Promise<number> {
  const plan = planFleet(options.devices, options.prefix)
  let members: FleetMember[]
  if (options.provision) {
    if (!options.token) throw new UsageError('--provision needs an admin token: set ADMIN_TOKEN, pass --token, or run where npm start keeps DATA_DIR/admin-token')
    out.log(`provisioning ${plan.length} devices at ${options.serverUrl} …`)
    members = await provisionFleet(options.serverUrl, options.token, plan, new Map(loadFleet(options.stateDir).map((m) => [m.id, m.secret])))
    saveFleet(options.stateDir, members)
    out.log(`provisioned ${members.length} devices (secrets kept in ${join(options.stateDir, 'fleet.json')})`)
  } else {
    const saved = new Map(loadFleet(options.stateDir).map((m) => [m.id, m]))
    const missing = plan.filter((p) => !saved.has(p.id))
    if (missing.length > 0) throw new ProvisionError(`${missing.length} devices (first ${missing[0]!.id}) have no saved secret in ${options.stateDir}; run once with --provision`)
    members = plan.map((p) => saved.get(p.id)!)
  }

  const stats = new SimStats(members.length)
  const spanMs = options.duration > 0 ? options.duration * 1000 : ENDLESS_CYCLE_MS
  const heartbeatMs = simHeartbeatMs('button', members.length, options)
  const fleet = members.map((member) => simDevice(member, options, simHeartbeatMs(member.kind, members.length, options), stats, out))

  const started = performance.now()
  const elapsed = () => (performance.now() - started) / 1000
  const queued = () => fleet.reduce((n, d) => n + d.device.queued, 0)
  out.log(`${options.scenario}: ${members.length} devices → ${options.mqttUrl}, ${options.duration > 0 ? `${options.duration} s` : 'until interrupted'}, a heartbeat every ${(heartbeatMs / 1000).toFixed(1)} s per device`)

  // Power-on spread over up to two seconds: a fleet does not boot in the same millisecond.
  const spread = Math.min(2000, members.length * 5)
  const timers: NodeJS.Timeout[] = fleet.map((d) => setTimeout(() => d.device.start(), Math.random() * spread))

  const operator = options.operator && options.token ? new SimOperator(options.serverUrl, options.token, new Set(members.map((m) => m.id))) : undefined
  operator?.start()

  const schedule = (offset: number) => {
    for (const s of SCENARIO_STEPS[options.scenario](fleet, spanMs, Math.random)) {
      timers.push(setTimeout(() => {
        out.log(`+${elapsed().toFixed(1)}s ${s.what}`)
        s.run()
      }, spread + offset + s.at))
    }
  }
  schedule(0)
  const cycle = options.duration === 0 ? setInterval(() => schedule(0), spanMs) : undefined
  const ticker = setInterval(() => out.status(stats.line(elapsed(), queued())), 1000)

  // Endless (duration 0): until stopped. A timer holds at most 2^31-1 ms; asked for more, Node
  // fires it after 1 ms, and an endless run ended after a second.
  if (options.duration > 0) await sleep(spread + spanMs, undefined, { signal: stopSignal }).catch(() => {})
  else if (!stopSignal.aborted) await once(stopSignal, 'abort')

  // Let what was pressed reach the gateway (up to 5 s; a device that lost power keeps its
  // queue to itself), then give the acks a moment.
  const waiting = () => fleet.reduce((n, d) => n + (d.device.connected ? d.device.queued : 0), 0)
  for (let waited = 0; waiting() > 0 && waited < 5000; waited += 100) await sleep(100)
  await sleep(1000)
  for (const t of timers) clearTimeout(t)
  clearInterval(cycle)
  clearInterval(ticker)
  operator?.stop()
  await Promise.all(fleet.map((d) => d.device.stop()))

  out.log(`final: ${stats.line(elapsed(), queued())}`)
  if (operator) out.log(`operator: ${operator.acknowledged} acknowledged, ${operator.resolved} resolved`)
  const neverConnected = members.length - stats.everConnected.size
  if (stats.refused > 0) out.log(`REFUSED by the gateway: ${[...stats.refusals].map(([r, n]) => `${r} ×${n}`).join(', ')}`)
  if (neverConnected > 0) out.log(`${neverConnected} devices never connected`)
  if (options.json) out.log(JSON.stringify(stats))
  return stats.refused === 0 && neverConnected === 0 ? 0 : 1
}

/**
 * A simulated device's heartbeat period: fleet-wide --rate heartbeats per second, or about ten
 * per device over the run but never longer than the kind's own period (kinds.ts): the gateway
 * supervises by it, and a long run beating once a minute had the whole fleet reported offline.
 */
export function simHeartbeatMs (kind: DeviceKind, fleetSize: number, options: Pick<SimOptions, 'rate' | 'duration'>): number {
  if (options.rate) return (fleetSize / options.rate) * 1000
  const spanMs = options.duration > 0 ? options.duration * 1000 : ENDLESS_CYCLE_MS
  return Math.min(KIND_PROFILES[kind].heartbeatMs, Math.max(1000, spanMs / 10))
}

function simDevice (member: FleetMember, options: SimOptions, heartbeatMs: number, stats: SimStats, out: SimOutput): SimDevice {
  const outputs = new RecordedOutputs()
  const showScreen = outputs.screen.bind(outputs)
  outputs.screen = (message: ScreenMessage) => {
    showScreen(message)
    if (message.kind === 'announcement_cleared') out.log(`  [${member.id} screen] announcement ${message.id} over`)
    else if (message.kind !== 'status') out.log(`  [${member.id} screen] ${message.text.vi} | ${message.text.en}`)
  }
  const device = new Device({
    id: member.id,
    secret: member.secret,
    kind: member.kind,
    zone: member.zone,
    silent: member.silent,
    mqttUrl: options.mqttUrl,
    stateDir: join(options.stateDir, 'seq'),
    heartbeatMs,
    seqReserve: 64,
    backoff: { baseMs: 500, maxMs: 30_000 }
  }, outputs)
  device.on('connected', () => { stats.connected++; stats.everConnected.add(member.id) })
  device.on('disconnected', () => { stats.connected = Math.max(0, stats.connected - 1) })
  device.on('refused', (reason) => {
    if (!stats.refusals.has(reason)) out.log(`  ${member.id}: refused (${reason})`)
    stats.refuse(reason)
  })
  device.on('unavailable', () => { stats.unavailable++ })
  device.on('sent', () => { stats.sent++ })
  device.on('puback', (_event, ms) => stats.puback(ms))
  device.on('ack', (ack, ms) => stats.ack(ack, ms))
  device.on('dropped', () => { stats.dropped++ })
  device.on('seqUnsaved', (reason, boot) => out.log(`  ${member.id}: cannot save its seq file (${reason}); counting on in memory under boot ${boot}`))
  return { device, member }
}
