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
  /** CANCEL_WINDOW: a device cancel (with PIN) is accepted this long after its alert opened. Default 30 s. */
  readonly cancelWindowMs?: number
  /** ESCALATE_AFTER: an open panic alert escalates after this, and again each further interval. Default 60 s. */
  readonly escalateAfterMs?: number
  /** GATEWAY_LOST_AFTER: a gateway not heard from for this long is lost, its devices reported offline. Default 90 s. */
  readonly gatewayLostAfterMs?: number
  /** WEBHOOK_URLS (comma-separated): receivers of escalations, body signed with WEBHOOK_SECRET. */
  readonly webhookUrls?: readonly string[]
  readonly webhookSecret?: string
  /** EVENTS_COMPRESS_AFTER_DAYS (TimescaleDB): compress event chunks older than this. Default 7. */
  readonly eventsCompressAfterDays?: number
  /** EVENTS_RETENTION_DAYS (TimescaleDB): drop events older than this; 0 = keep. Default 365. */
  readonly eventsRetentionDays?: number
  /** STREAMS_PER_TOKEN: live streams (`GET /v1/stream`) one token may hold open at once. Default 20. */
  readonly streamsPerToken?: number
  /** STREAMS_TOTAL: live streams the server holds open at once, all tokens together. Default 500. */
  readonly streamsTotal?: number
  /** DEAD_LETTER_RETENTION_DAYS: delete dead letters stored longer ago than this; 0 = keep. Default 30. */
  readonly deadLetterRetentionDays?: number
}

/** Defaults of the optional settings (tests and embedders may leave them out). */
export const SERVER_DEFAULTS = Object.freeze({
  cancelWindowMs: 30_000,
  escalateAfterMs: 60_000,
  // Gateways call at least every 25 s (the downlink long poll), and stay at most 60 s in one;
  // their calls are written at most every 10 s.
  gatewayLostAfterMs: 90_000,
  eventsCompressAfterDays: 7,
  // A ward's consoles and wall displays: a few per token, tens in all.
  streamsPerToken: 20,
  streamsTotal: 500,
  eventsRetentionDays: 365,
  deadLetterRetentionDays: 30
})

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

/** `30` (seconds), `30s`, `500ms`, `2m`, `1h` → milliseconds. */
export function duration (env: NodeJS.ProcessEnv, name: string, fallbackMs: number, minMs = 1000): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallbackMs
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(raw.trim())
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match?.[2] ?? 's'] ?? 1000
  const value = match ? Math.round(Number(match[1]) * unit) : NaN
  if (!Number.isFinite(value) || value < minMs) {
    throw new ConfigError(`${name} must be a duration of at least ${minMs} ms, like 30s, 2m or 500ms; got "${raw}"`)
  }
  return value
}

export function days (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be a whole number of days ≥ ${min}, got "${raw}"`)
  return value
}

/** A whole number of things, at least `min`. */
export function count (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be a whole number ≥ ${min}, got "${raw}"`)
  return value
}

export function webhookUrls (env: NodeJS.ProcessEnv): string[] {
  const urls = (env.WEBHOOK_URLS ?? '').split(',').map((u) => u.trim()).filter(Boolean)
  for (const url of urls) {
    let parsed: URL | undefined
    try { parsed = new URL(url) } catch {}
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) throw new ConfigError(`WEBHOOK_URLS: "${url}" is not an http(s) URL`)
  }
  if (urls.length > 0 && !env.WEBHOOK_SECRET) throw new ConfigError('WEBHOOK_SECRET is required when WEBHOOK_URLS is set (receivers verify the signature)')
  return urls
}

/** The aggregates' 7-day refresh window, and a day-wide chunk that is dropped only whole, and a day's margin. */
const MIN_RETENTION_DAYS = 9

/** Shortest token taken from the environment: a floor against mistakes (`ADMIN_TOKEN=a`), not a strength. */
const MIN_TOKEN_LENGTH = 8

/**
 * A bearer token given in the environment, if any. One left at the `.env.example` placeholder,
 * or a few characters long, opened the admin API to anyone who guessed it: the start stops.
 */
function configuredToken (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const token = env[name]
  if (!token) return undefined
  if (/change-?me/i.test(token)) throw new ConfigError(`${name} is still the example's placeholder: set a long random one (openssl rand -base64 32)`)
  if (token.length < MIN_TOKEN_LENGTH) throw new ConfigError(`${name} must be at least ${MIN_TOKEN_LENGTH} characters (a long random one: openssl rand -base64 32)`)
  return token
}

export function serverConfigFromEnv (env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const compressAfter = days(env, 'EVENTS_COMPRESS_AFTER_DAYS', SERVER_DEFAULTS.eventsCompressAfterDays, 1)
  const retention = days(env, 'EVENTS_RETENTION_DAYS', SERVER_DEFAULTS.eventsRetentionDays, 0)
  if (retention > 0 && retention <= compressAfter) {
    throw new ConfigError(`EVENTS_RETENTION_DAYS (${retention}) must be 0 (keep) or more than EVENTS_COMPRESS_AFTER_DAYS (${compressAfter})`)
  }
  // The device-health aggregate is refreshed from events up to a day short of the retention
  // (db/timescale.ts refreshStartHours), never over hours whose events were dropped (they would be
  // recomputed from nothing, and the history lost); a floor keeps late events countable.
  if (retention > 0 && retention < MIN_RETENTION_DAYS) {
    throw new ConfigError(`EVENTS_RETENTION_DAYS (${retention}) must be 0 (keep) or at least ${MIN_RETENTION_DAYS}: the hourly device-health summary is refreshed from events up to a day short of the retention, and a gateway's outbox drained after a week-long outage must still find its hours there`)
  }
  return Object.freeze({
    cancelWindowMs: duration(env, 'CANCEL_WINDOW', SERVER_DEFAULTS.cancelWindowMs),
    escalateAfterMs: duration(env, 'ESCALATE_AFTER', SERVER_DEFAULTS.escalateAfterMs),
    gatewayLostAfterMs: duration(env, 'GATEWAY_LOST_AFTER', SERVER_DEFAULTS.gatewayLostAfterMs, 75_000),
    webhookUrls: Object.freeze(webhookUrls(env)),
    webhookSecret: env.WEBHOOK_SECRET || undefined,
    eventsCompressAfterDays: compressAfter,
    eventsRetentionDays: retention,
    deadLetterRetentionDays: days(env, 'DEAD_LETTER_RETENTION_DAYS', SERVER_DEFAULTS.deadLetterRetentionDays, 0),
    streamsPerToken: count(env, 'STREAMS_PER_TOKEN', SERVER_DEFAULTS.streamsPerToken, 1),
    streamsTotal: count(env, 'STREAMS_TOTAL', SERVER_DEFAULTS.streamsTotal, 1),
    httpPort: port(env, 'HTTP_PORT', 8080),
    httpHost: env.HTTP_HOST || '0.0.0.0',
    dataDir: resolve(env.DATA_DIR || './data'),
    databaseUrl: env.DATABASE_URL || undefined,
    adminToken: configuredToken(env, 'ADMIN_TOKEN'),
    gatewayToken: configuredToken(env, 'GATEWAY_TOKEN'),
    logLevel: env.LOG_LEVEL || 'info'
  })
}
