/**
 * Gateway settings from the environment, checked at boot, frozen, passed in.
 */
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { ConfigError, port } from '../server/config.js'

export interface GatewayConfig {
  readonly gatewayId: string
  readonly mqttHost: string
  readonly mqttPort: number
  readonly mqttWsPort: number
  /** Set only with both TLS files. */
  readonly mqttTlsPort?: number
  readonly tlsCertFile?: string
  readonly tlsKeyFile?: string
  readonly dataDir: string
  readonly serverUrl: string
  readonly gatewayToken: string
  /** How often the device credential cache is refreshed (a revoked device is refused after at most this). */
  readonly credentialRefreshMs: number
  readonly forwardBatchSize: number
  readonly logLevel: string
}

export function gatewayConfigFromEnv (env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const gatewayToken = env.GATEWAY_TOKEN
  if (!gatewayToken) throw new ConfigError('GATEWAY_TOKEN is required: the gateway authenticates to the server with it')
  const tlsCertFile = env.TLS_CERT_FILE || undefined
  const tlsKeyFile = env.TLS_KEY_FILE || undefined
  if (Boolean(tlsCertFile) !== Boolean(tlsKeyFile)) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together')
  return Object.freeze({
    gatewayId: env.GATEWAY_ID || `gw-${hostname()}`,
    mqttHost: env.MQTT_HOST || '0.0.0.0',
    mqttPort: port(env, 'MQTT_PORT', 1883),
    mqttWsPort: port(env, 'MQTT_WS_PORT', 8083),
    mqttTlsPort: tlsCertFile ? port(env, 'MQTT_TLS_PORT', 8883) : undefined,
    tlsCertFile,
    tlsKeyFile,
    dataDir: resolve(env.DATA_DIR || './data'),
    serverUrl: (env.SERVER_URL || `http://127.0.0.1:${port(env, 'HTTP_PORT', 8080)}`).replace(/\/+$/, ''),
    gatewayToken,
    credentialRefreshMs: 30_000,
    forwardBatchSize: 500,
    logLevel: env.LOG_LEVEL || 'info'
  })
}
