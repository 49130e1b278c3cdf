/**
 * What a maintainer reads when a start fails on the machine rather than in the code: one line
 * naming the path, host or setting at fault, not a stack trace (review 63: an unwritable
 * DATA_DIR, a database that refuses, a missing TLS file, a mistyped LOG_LEVEL all printed
 * stacks). Shared by `npm start`, `npm run server` and `npm run gateway`.
 */
import { pino } from 'pino'
import { ConfigError } from './config.js'

/** LOG_LEVEL, checked before a logger exists to say it (pino throws on a level it lacks). */
export function logLevelFromEnv (env: NodeJS.ProcessEnv = process.env): string {
  const level = env.LOG_LEVEL || 'info'
  if (level in pino.levels.values || level === 'silent') return level
  process.stderr.write(`LOG_LEVEL=${level} is not a log level: one of ${[...Object.keys(pino.levels.values), 'silent'].join(', ')}\n`)
  process.exit(2)
}

interface SystemError { code?: string, path?: string, address?: string, port?: number, hostname?: string, message?: string }

/** "Port N is taken" with the variable that moves it, for a listen that failed so; else undefined. */
export function portInUse (err: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const e = (err ?? {}) as SystemError
  const message = e.message ?? ''
  if (!/EADDRINUSE/.test(message) && e.code !== 'EADDRINUSE') return undefined
  // "listen EADDRINUSE: address already in use 0.0.0.0:1883" (from the gateway's thread: the message alone)
  const port = /:(\d{1,5})\s*$/.exec(message)?.[1] ?? String(e.port ?? '')
  const variables: Record<string, string> = {
    [env.GATEWAY_HTTP_PORT || '8081']: 'GATEWAY_HTTP_PORT',
    [env.MQTT_TLS_PORT || '8883']: 'MQTT_TLS_PORT',
    [env.MQTT_WS_PORT || '8083']: 'MQTT_WS_PORT',
    [env.MQTT_PORT || '1883']: 'MQTT_PORT',
    [env.HTTP_PORT || '8080']: 'HTTP_PORT'
  }
  const variable = variables[port]
  const broker = port === '1883' ? ' (another MQTT broker, Mosquitto say, often holds 1883: MQTT_PORT=1884 npm start)' : ''
  return `port ${port || '?'} is in use by another program${variable ? `: choose another with ${variable}=…` : ''}${broker}`
}

/** PostgreSQL's answers to a bad DATABASE_URL (SQLSTATE), as the maintainer would fix them. */
const DATABASE_REFUSALS: Record<string, string> = {
  '28P01': 'the password was refused',
  28000: 'the role may not sign in',
  '3D000': 'the database does not exist',
  '42501': 'the role lacks a privilege the server needs'
}

export interface BootFailure {
  /** The one line to log. */
  line: string
  /** 2: a setting to change (a retry cannot help); 1: the machine or a service around it, which a restart may find mended. */
  exitCode: 1 | 2
}

/**
 * One line for a start that failed on its settings or on the machine: a path it cannot write, a
 * host it cannot find, a database that refuses; undefined for anything else (a bug: its stack is
 * wanted).
 */
export function bootFailure (err: unknown, env: NodeJS.ProcessEnv = process.env): BootFailure | undefined {
  if (err instanceof ConfigError) return { line: err.message, exitCode: 2 }
  const taken = portInUse(err, env)
  if (taken) return { line: taken, exitCode: 2 }
  const line = machineFailure(err, env)
  return line ? { line, exitCode: 1 } : undefined
}

function machineFailure (err: unknown, env: NodeJS.ProcessEnv): string | undefined {
  const e = (err ?? {}) as SystemError
  const message = e.message ?? ''
  const database = env.DATABASE_URL ? 'DATABASE_URL' : undefined
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `cannot write ${e.path ?? 'a file'}: ${e.code === 'EROFS' ? 'the disk is read-only' : 'permission denied'} (DATA_DIR=${env.DATA_DIR || './data'} must be writable by this user)`
    case 'ENOTDIR':
      return `${e.path ?? 'a path'}: part of it is a file, not a directory (DATA_DIR=${env.DATA_DIR || './data'})`
    case 'ENOSPC':
      return `no space left on the disk of ${e.path ?? `DATA_DIR=${env.DATA_DIR || './data'}`}`
    case 'ENOENT':
      return e.path ? `${e.path} does not exist (check the setting that names it: TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE, DATA_DIR)` : undefined
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host ${e.hostname ?? '?'} not found (check DATABASE_URL, HTTP_HOST, MQTT_HOST, SERVER_URL)`
    case 'EADDRNOTAVAIL':
      return `${e.address ?? 'an address'} is not an address of this machine (check HTTP_HOST, MQTT_HOST)`
    case 'ECONNREFUSED':
      return database ? `the database at ${e.address ?? '?'}:${e.port ?? '?'} refused the connection: is PostgreSQL running there? (${database})` : undefined
  }
  if (database && e.code && e.code in DATABASE_REFUSALS) return `the database refused this server: ${DATABASE_REFUSALS[e.code]}: ${message} (${database})`
  // better-sqlite3 names no path; the gateway's disk is under DATA_DIR.
  if (/unable to open database file/.test(message)) return `cannot open the gateway's database under DATA_DIR=${env.DATA_DIR || './data'}: is it a writable directory?`
  return undefined
}
