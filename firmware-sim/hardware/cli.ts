/**
 * Options shared by the hardware drivers' commands: who the device is and where the gateway
 * is. The secret may come from DEVICE_SECRET instead of the command line (shell history).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { resolve, join } from 'node:path'
import { isDeviceId } from '../../protocol/index.js'
import { DEVICE_KINDS, type DeviceKind } from '../device/kinds.js'
import type { DeviceConfig } from '../device/device.js'

export class UsageError extends Error {}

const COMMON = {
  port: { type: 'string' },
  id: { type: 'string' },
  secret: { type: 'string' },
  kind: { type: 'string' },
  zone: { type: 'string', default: 'apd-1' },
  silent: { type: 'boolean' },
  'mqtt-url': { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false }
} as const satisfies ParseArgsConfig['options']

export function parseHardwareArgs<T extends NonNullable<ParseArgsConfig['options']>> (argv: string[], extra: T, defaultKind: DeviceKind, env: NodeJS.ProcessEnv = process.env) {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, strict: true, options: { ...COMMON, ...extra } }).values as Record<string, string | boolean | undefined>
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help) return { help: true as const, values }
  const str = (name: string) => typeof values[name] === 'string' ? values[name] as string : undefined
  const port = str('port')
  if (!port) throw new UsageError('--port is required (e.g. /dev/ttyUSB0, /dev/ttyACM0, COM3)')
  const id = str('id')
  if (!isDeviceId(id)) throw new UsageError('--id is required: the provisioned device id (lowercase letters, digits, dashes)')
  const secret = str('secret') ?? env.DEVICE_SECRET
  if (!secret) throw new UsageError('--secret (or DEVICE_SECRET) is required: the secret shown at provisioning')
  const kind = (str('kind') ?? defaultKind) as DeviceKind
  if (!DEVICE_KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${DEVICE_KINDS.join(', ')}`)
  const mqttPort = env.MQTT_PORT || '1883'
  const device: DeviceConfig = {
    id,
    secret,
    kind,
    zone: str('zone') ?? 'apd-1',
    mqttUrl: str('mqtt-url') ?? `mqtt://127.0.0.1:${mqttPort}`,
    stateDir: resolve(str('state-dir') ?? join(env.DATA_DIR || './data', 'device')),
    ...(typeof values.silent === 'boolean' ? { silent: values.silent } : {})
  }
  return { help: false as const, port, device, values }
}

export function integerArg (name: string, raw: string | boolean | undefined, fallback: number): number {
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new UsageError(`--${name} must be a non-negative integer; got "${String(raw)}"`)
  return value
}
