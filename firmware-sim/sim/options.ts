/**
 * `npm run sim` options: flags first, then the same environment `npm start` reads, so a
 * simulator next to a local `npm start` needs no flags at all. Checked once, with readable errors.
 */
import { parseArgs } from 'node:util'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const SCENARIOS = ['demo', 'burst', 'prank', 'flaky', 'storm', 'kiosk-reports'] as const
export type ScenarioName = typeof SCENARIOS[number]

export interface SimOptions {
  devices: number
  /** Seconds; 0 = until interrupted (the scenario repeats). */
  duration: number
  scenario: ScenarioName
  provision: boolean
  /** Fleet-wide heartbeats per second; undefined = about ten per device over the run. */
  rate?: number
  mqttUrl: string
  serverUrl: string
  token?: string
  stateDir: string
  prefix: string
  /** Act as the ward operator too: acknowledge and resolve the alerts the fleet raises. */
  operator: boolean
  json: boolean
}

export class UsageError extends Error {}

export const USAGE = `usage: npm run sim -- [--devices N] [--duration SECONDS] [--scenario ${SCENARIOS.join('|')}]
                      [--provision] [--rate EVENTS_PER_SECOND] [--operator] [--json]
                      [--mqtt-url URL] [--server-url URL] [--token ADMIN_TOKEN] [--state-dir DIR] [--prefix ID_PREFIX]
Defaults come from MQTT_PORT, HTTP_PORT, ADMIN_TOKEN (or DATA_DIR/admin-token) and DATA_DIR, as for npm start.`

export function parseSimOptions (argv: string[], env: NodeJS.ProcessEnv = process.env): SimOptions | 'help' {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        devices: { type: 'string', default: '20' },
        duration: { type: 'string', default: '60' },
        scenario: { type: 'string', default: 'demo' },
        provision: { type: 'boolean', default: false },
        rate: { type: 'string' },
        'mqtt-url': { type: 'string' },
        'server-url': { type: 'string' },
        token: { type: 'string' },
        'state-dir': { type: 'string' },
        prefix: { type: 'string', default: 'sim' },
        operator: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help) return 'help'
  const devices = integer('--devices', values.devices, 1, 100_000)
  const duration = integer('--duration', values.duration, 0, 31 * 86_400)
  if (!(SCENARIOS as readonly string[]).includes(values.scenario)) throw new UsageError(`--scenario must be one of ${SCENARIOS.join(', ')}; got "${values.scenario}"`)
  const rate = values.rate === undefined ? undefined : Number(values.rate)
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) throw new UsageError(`--rate must be a positive number of events per second; got "${values.rate}"`)
  if (!/^[a-z0-9][a-z0-9-]{0,20}$/.test(values.prefix)) throw new UsageError('--prefix must be lowercase letters, digits and dashes (at most 21)')

  const dataDir = resolve(env.DATA_DIR || './data')
  const mqttUrl = values['mqtt-url'] ?? `mqtt://127.0.0.1:${envPort(env, 'MQTT_PORT', 1883)}`
  const serverUrl = (values['server-url'] ?? `http://127.0.0.1:${envPort(env, 'HTTP_PORT', 8080)}`).replace(/\/+$/, '')
  return {
    devices,
    duration,
    scenario: values.scenario as ScenarioName,
    provision: values.provision,
    rate,
    mqttUrl,
    serverUrl,
    token: values.token ?? (env.ADMIN_TOKEN || undefined) ?? readAdminTokenFile(dataDir),
    stateDir: resolve(values['state-dir'] ?? join(dataDir, 'sim')),
    prefix: values.prefix,
    operator: values.operator,
    json: values.json
  }
}

function integer (name: string, raw: string, min: number, max: number): number {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}; got "${raw}"`)
  return value
}

function envPort (env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (!raw) return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new UsageError(`${name} must be a port number; got "${raw}"`)
  return value
}

/** `npm start` keeps a generated admin token in DATA_DIR/admin-token. */
function readAdminTokenFile (dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'admin-token'), 'utf8').trim() || undefined
  } catch {
    return undefined
  }
}
