/**
 * Gateway settings from the environment, checked at boot, frozen, passed in.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { ConfigError, port } from '../server/config.js'
import { gatewayIdProblem } from '../protocol/index.js'

export interface GatewayConfig {
  readonly gatewayId: string
  readonly mqttHost: string
  readonly mqttPort: number
  readonly mqttWsPort: number
  /** Set only with both TLS files. */
  readonly mqttTlsPort?: number
  readonly tlsCertFile?: string
  readonly tlsKeyFile?: string
  /**
   * CA bundle for client certificates on the TLS listener. When set, a device may authenticate
   * with a certificate signed by it whose CN is its device id, instead of its secret.
   */
  readonly tlsCaFile?: string
  /** With `tlsCaFile`: refuse TLS clients without a valid certificate (mutual TLS only). */
  readonly tlsRequireClientCert?: boolean
  /** Health and Prometheus metrics over HTTP; undefined = not served. */
  readonly httpPort?: number
  readonly dataDir: string
  readonly serverUrl: string
  readonly gatewayToken: string
  /** How often the device credential cache is refreshed (a revoked device is refused after at most this). */
  readonly credentialRefreshMs: number
  readonly forwardBatchSize: number
  /** Routine events are forwarded in rounds at most this many ms apart (alarms never wait). */
  readonly forwardIntervalMs?: number
  /** Requests in flight to the server at most, per lane (each device in one of them, so it keeps its order). */
  readonly forwardParallel?: number
  /** Outbox bound (events); see the policy in outbox.ts. */
  readonly outboxMaxEvents?: number
  /** An alarm whose outbox write takes longer than this (a disk that hangs) goes to the server from memory, ms (pipeline/persist.ts). */
  readonly outboxStallMs?: number
  /** Heartbeat interval per device kind, ms (supervision). */
  readonly heartbeatIntervalsMs?: Readonly<Record<string, number>>
  /** A dropped connection that comes back within this is not reported offline. */
  readonly reconnectGraceMs?: number
  /** Routine events (heartbeat, battery, test…) per device: burst and per-second refill. */
  readonly rateLimit?: { readonly burst: number, readonly perSecond: number }
  /** At most this many MQTT connections (kept below the open-file limit). */
  readonly maxConnections?: number
  /** Connections a device may hold beside its own (`{id}:{suffix}`: a service tool, a test subscriber). */
  readonly extraConnectionsPerDevice?: number
  /** Refused publishes of one device kept whole as dead letters per window; past it, one summary (dead-letter-budget.ts). */
  readonly deadLetterBudget?: { readonly perWindow: number, readonly windowMs: number }
  /** A connection refused this many publishes within the window is closed and its client id refused at CONNECT for a hold-off, from `firstHoldOffMs` doubling up to `holdOffMs` while it babbles again within `rememberMs` (babbling-connections.ts; refusals 0: never). */
  readonly babblingShutdown?: { readonly refusals: number, readonly windowMs: number, readonly firstHoldOffMs: number, readonly holdOffMs: number, readonly rememberMs: number }
  /** How long a frozen client may hold up delivery before it is disconnected, ms. */
  readonly drainTimeoutMs?: number
  /** How long the downlink long poll waits on the server, ms. */
  readonly downlinkWaitMs?: number
  readonly logLevel: string
}

export const DEFAULT_HEARTBEAT_INTERVALS_MS = Object.freeze({ button: 30_000, kiosk: 30_000, counter: 30_000 })

/** What the optional settings are when left out: by the environment, or by a caller's config (tests). */
export const GATEWAY_DEFAULTS = Object.freeze({
  forwardIntervalMs: 25,
  forwardParallel: 4,
  reconnectGraceMs: 5_000,
  // A pedestrian should see within a second that the press was received (DESIGN §1); a commit
  // takes a millisecond or so, a few hundred under a burst.
  outboxStallMs: 1_000,
  rateLimit: Object.freeze({ burst: 10, perSecond: 1 }),
  // A service tool and a test subscriber or two; more is one secret taking the gateway's slots.
  extraConnectionsPerDevice: 4,
  // Enough to see each way a faulty device fails, and why (a firmware broken many ways shows two
  // dozen in seconds), not one stored row per packet of a spray.
  deadLetterBudget: Object.freeze({ perWindow: 30, windowMs: 60_000 }),
  // 2 000 refused in 10 s: 200 a second, a hundred times a device's routine rate. Held off 5 s
  // first (its own alarm waits little), doubling while it babbles on, up to a minute.
  babblingShutdown: Object.freeze({ refusals: 2_000, windowMs: 10_000, firstHoldOffMs: 5_000, holdOffMs: 60_000, rememberMs: 600_000 })
})

function seconds (env: NodeJS.ProcessEnv, name: string, fallbackMs: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallbackMs
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`${name} must be a positive number of seconds, got "${raw}"`)
  return Math.round(value * 1000)
}

/** 0 (never), or a bar no working device comes near: one set to 1 would shut a device down for one bad payload. */
function babblingRefusals (env: NodeJS.ProcessEnv): number {
  const value = nonNegativeInt(env, 'BABBLING_REFUSALS', GATEWAY_DEFAULTS.babblingShutdown.refusals)
  if (value !== 0 && value < 100) throw new ConfigError(`BABBLING_REFUSALS must be 0 (never) or at least 100 refused publishes in 10 s, got "${env.BABBLING_REFUSALS}"`)
  return value
}

function positiveInt (env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`${name} must be a positive integer, got "${raw}"`)
  return value
}

function nonNegativeInt (env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(`${name} must be an integer of 0 or more, got "${raw}"`)
  return value
}

/** The soft open-file limit (Linux), so connections never exhaust descriptors the outbox and HTTP need. */
export function openFileLimit (): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = Number(line?.split(/\s{2,}/)[1])
    return Number.isFinite(soft) ? soft : undefined
  } catch {
    return undefined
  }
}

/** Below the open-file limit with room for the database, HTTP and the server connection. */
export function defaultMaxConnections (): number {
  const limit = openFileLimit() ?? 1024
  return Math.max(16, Math.min(50_000, limit - 256))
}

/** `true` or `false` (or unset: false); anything else is a mistake worth stopping for. */
function flag (env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '' || raw === 'false') return false
  if (raw === 'true') return true
  throw new ConfigError(`${name} must be true or false, got "${raw}"`)
}

/** An http(s) URL without a trailing slash: anything else failed on every request, forever, with the gateway still "running". */
function serverUrl (raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(`SERVER_URL must be an http:// or https:// URL, got "${raw}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`SERVER_URL must be an http:// or https:// URL, got "${raw}"`)
  // Paths are appended to it: a query or fragment would end up in the middle of each request's URL.
  if (url.search || url.hash) throw new ConfigError(`SERVER_URL must have no query or fragment, got "${raw}"`)
  return raw.replace(/\/+$/, '')
}

export function gatewayConfigFromEnv (env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const gatewayToken = env.GATEWAY_TOKEN
  if (!gatewayToken) throw new ConfigError('GATEWAY_TOKEN is required: the gateway authenticates to the server with it')
  const tlsCertFile = env.TLS_CERT_FILE || undefined
  const tlsKeyFile = env.TLS_KEY_FILE || undefined
  if (Boolean(tlsCertFile) !== Boolean(tlsKeyFile)) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together')
  const tlsCaFile = env.TLS_CA_FILE || undefined
  if (tlsCaFile && !tlsCertFile) throw new ConfigError('TLS_CA_FILE (client certificates) needs TLS_CERT_FILE and TLS_KEY_FILE')
  // A requirement that cannot hold must stop the start: taken as false, it let devices in on a
  // password alone where the operator had asked for certificates.
  const tlsRequireClientCert = flag(env, 'TLS_REQUIRE_CLIENT_CERT')
  if (tlsRequireClientCert && !tlsCaFile) throw new ConfigError('TLS_REQUIRE_CLIENT_CERT=true needs TLS_CA_FILE (the CA that signs the device certificates), and TLS_CERT_FILE and TLS_KEY_FILE')
  const limit = openFileLimit()
  const maxConnections = positiveInt(env, 'MQTT_MAX_CONNECTIONS', defaultMaxConnections())
  if (limit !== undefined && maxConnections > limit - 128) throw new ConfigError(`MQTT_MAX_CONNECTIONS (${maxConnections}) must stay at least 128 below the open-file limit (${limit}): sockets beyond it, the outbox and HTTP need descriptors too`)
  const heartbeat = seconds(env, 'HEARTBEAT_INTERVAL_S', 30_000)
  // Named on every request and event: one the server refuses would have every batch refused
  // (and sent again) forever. A host name may be 64 characters, so its default is cut to fit.
  const gatewayId = env.GATEWAY_ID || `gw-${hostname()}`.slice(0, 64)
  const idProblem = gatewayIdProblem(gatewayId)
  if (idProblem) throw new ConfigError(`GATEWAY_ID ${idProblem}`)
  return Object.freeze({
    gatewayId,
    mqttHost: env.MQTT_HOST || '0.0.0.0',
    mqttPort: port(env, 'MQTT_PORT', 1883),
    mqttWsPort: port(env, 'MQTT_WS_PORT', 8083),
    mqttTlsPort: tlsCertFile ? port(env, 'MQTT_TLS_PORT', 8883) : undefined,
    tlsCertFile,
    tlsKeyFile,
    tlsCaFile,
    tlsRequireClientCert,
    httpPort: port(env, 'GATEWAY_HTTP_PORT', 8081),
    dataDir: resolve(env.DATA_DIR || './data'),
    serverUrl: serverUrl(env.SERVER_URL || `http://127.0.0.1:${port(env, 'HTTP_PORT', 8080)}`),
    gatewayToken,
    credentialRefreshMs: seconds(env, 'CREDENTIAL_REFRESH_S', 30_000),
    forwardBatchSize: 500,
    forwardIntervalMs: GATEWAY_DEFAULTS.forwardIntervalMs,
    forwardParallel: positiveInt(env, 'FORWARD_PARALLEL', GATEWAY_DEFAULTS.forwardParallel),
    outboxMaxEvents: positiveInt(env, 'OUTBOX_MAX_EVENTS', 200_000),
    outboxStallMs: seconds(env, 'OUTBOX_STALL_S', GATEWAY_DEFAULTS.outboxStallMs),
    heartbeatIntervalsMs: Object.freeze({
      button: seconds(env, 'HEARTBEAT_INTERVAL_BUTTON_S', heartbeat),
      kiosk: seconds(env, 'HEARTBEAT_INTERVAL_KIOSK_S', heartbeat),
      counter: seconds(env, 'HEARTBEAT_INTERVAL_COUNTER_S', heartbeat)
    }),
    reconnectGraceMs: seconds(env, 'RECONNECT_GRACE_S', GATEWAY_DEFAULTS.reconnectGraceMs),
    rateLimit: Object.freeze({ burst: positiveInt(env, 'RATE_LIMIT_BURST', GATEWAY_DEFAULTS.rateLimit.burst), perSecond: GATEWAY_DEFAULTS.rateLimit.perSecond }),
    maxConnections,
    extraConnectionsPerDevice: nonNegativeInt(env, 'MQTT_EXTRA_CONNECTIONS_PER_DEVICE', GATEWAY_DEFAULTS.extraConnectionsPerDevice),
    deadLetterBudget: Object.freeze({
      perWindow: nonNegativeInt(env, 'DEAD_LETTERS_PER_MINUTE', GATEWAY_DEFAULTS.deadLetterBudget.perWindow),
      windowMs: GATEWAY_DEFAULTS.deadLetterBudget.windowMs
    }),
    babblingShutdown: Object.freeze({
      ...GATEWAY_DEFAULTS.babblingShutdown,
      refusals: babblingRefusals(env),
      holdOffMs: seconds(env, 'BABBLING_HOLD_OFF_S', GATEWAY_DEFAULTS.babblingShutdown.holdOffMs)
    }),
    drainTimeoutMs: 10_000,
    downlinkWaitMs: 25_000,
    logLevel: env.LOG_LEVEL || 'info'
  })
}
