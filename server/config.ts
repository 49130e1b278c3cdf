/**
 * Server settings from the environment, checked once at boot with readable errors,
 * then frozen and passed in (no global settings object).
 */
import { resolve } from 'node:path'

export interface ServerConfig {
  readonly httpPort: number
  readonly httpHost: string
  readonly dataDir: string
  readonly databaseUrl?: string
  /** When unset, the process entry generates one and keeps it in `{dataDir}/admin-token`. */
  readonly adminToken?: string
  /** A gateway token accepted in addition to those issued through the API. */
  readonly gatewayToken?: string
  readonly logLevel: string
}

export class ConfigError extends Error {}

export function port (env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new ConfigError(`${name} must be a port number (0–65535), got "${raw}"`)
  }
  return value
}

export function serverConfigFromEnv (env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return Object.freeze({
    httpPort: port(env, 'HTTP_PORT', 8080),
    httpHost: env.HTTP_HOST || '0.0.0.0',
    dataDir: resolve(env.DATA_DIR || './data'),
    databaseUrl: env.DATABASE_URL || undefined,
    adminToken: env.ADMIN_TOKEN || undefined,
    gatewayToken: env.GATEWAY_TOKEN || undefined,
    logLevel: env.LOG_LEVEL || 'info'
  })
}
