/**
 * `npm start`: the whole system in one process on one machine — server with embedded storage
 * (PGlite under DATA_DIR, or DATABASE_URL) on the main thread, and the gateway, in a thread of
 * its own (gateway/thread.ts), forwarding to it over loopback.
 */
import { randomBytes } from 'node:crypto'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError, serverConfigFromEnv } from './server/config.js'
import { bootFailure, logLevelFromEnv } from './server/boot-errors.js'
import { resolveAdminToken } from './server/admin-token.js'
import { startServer } from './server/server.js'
import { gatewayConfigFromEnv, type GatewayConfig } from './gateway/config.js'
import { endPastHungDisk } from './gateway/gateway.js'
import { startGatewayInThread } from './gateway/thread.js'

const log = pino({ level: logLevelFromEnv() })
/** Set once known: a start that fails after generating the admin token still shows it, once. */
let generatedAdminToken: { token: string, file?: string } | undefined

try {
  const serverConfig = serverConfigFromEnv()
  // The gateway's settings are checked before the server starts: a mistyped MQTT_PORT ends the
  // start at once, not after the database was migrated and the API listened.
  checkPortsApart(gatewayConfigFromEnv({ ...process.env, GATEWAY_TOKEN: 'checked-before-start', SERVER_URL: process.env.SERVER_URL || 'http://127.0.0.1' }), serverConfig.httpPort)
  const admin = resolveAdminToken(serverConfig.dataDir, serverConfig.adminToken)
  if (admin.generated) generatedAdminToken = admin
  // The in-process gateway's token: GATEWAY_TOKEN if given, else one for this run only.
  const gatewayToken = serverConfig.gatewayToken ?? `gw_${randomBytes(24).toString('base64url')}`
  // The server listens first (the gateway loads its credentials from it), but the system is
  // up only once devices can connect: until then its health probes say so.
  let gatewayUp = false
  const server = await startServer({ ...serverConfig, adminToken: admin.token, gatewayToken }, log.child({ name: 'server' }),
    { starting: () => gatewayUp ? undefined : 'the gateway' })
  const gatewayConfig = gatewayConfigFromEnv({ ...process.env, GATEWAY_TOKEN: gatewayToken, SERVER_URL: process.env.SERVER_URL || server.url })
  // In a thread of its own: PGlite computes and writes on this one, and must not hold a PUBACK.
  const gateway = await startGatewayInThread(gatewayConfig, log, (why) => {
    // Without its gateway the system takes no presses: end, so the service manager restarts it.
    log.fatal(why)
    process.exit(1)
  })
  gatewayUp = true

  const lines = [
    '',
    'SOS gateway is running',
    `  HTTP API, docs   http://localhost:${server.port}/  (OpenAPI at /docs)`,
    `  MQTT             mqtt://localhost:${gateway.ports.mqtt}`,
    `  MQTT/WebSocket   ws://localhost:${gateway.ports.ws}`,
    ...(gateway.ports.tls ? [`  MQTT/TLS         mqtts://localhost:${gateway.ports.tls}`] : []),
    ...(gateway.ports.http ? [`  gateway health   http://localhost:${gateway.ports.http}/healthz  (Prometheus at /metrics)`] : []),
    `  storage          ${server.db.engine === 'pglite' ? `embedded PGlite in ${serverConfig.dataDir}` : 'PostgreSQL (DATABASE_URL)'}`,
    admin.generated
      ? `  admin token      ${admin.token}\n                   (shown once; kept in ${admin.file})`
      : `  admin token      ${admin.file ? `in ${admin.file}` : 'ADMIN_TOKEN'}`,
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
  generatedAdminToken = undefined

  closeWithGrace({ delay: 20_000, onTimeout: () => endPastHungDisk(log, 'closing took longer than its limit (a disk that hangs?)') }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'closing after an error')
    else log.info({ signal }, 'closing')
    const clean = await gateway.stop().then((stopped) => stopped.clean, (err: Error) => { log.error({ err }, 'gateway stop failed'); return false })
    // The gateway's disk hangs, and PGlite shares DATA_DIR by default: closing it would wait
    // for the disk on this very thread. Killed, it recovers from its WAL as after any crash.
    if (!clean) return endPastHungDisk(log)
    await server.close()
  })
} catch (err) {
  if (generatedAdminToken) process.stdout.write(`admin token generated on this start: ${generatedAdminToken.token}\n  (shown once; kept in ${generatedAdminToken.file})\n`)
  const failure = bootFailure(err)
  if (!failure) throw err
  log.fatal(failure.line)
  process.exit(failure.exitCode)
}

/** Two listeners on one port: the second would fail as if another program held it. */
function checkPortsApart (gateway: GatewayConfig, httpPort: number): void {
  const ports: Array<[string, number | undefined]> = [
    ['HTTP_PORT', httpPort], ['MQTT_PORT', gateway.mqttPort], ['MQTT_WS_PORT', gateway.mqttWsPort],
    ['MQTT_TLS_PORT', gateway.mqttTlsPort], ['GATEWAY_HTTP_PORT', gateway.httpPort]
  ]
  const seen = new Map<number, string>()
  for (const [name, port] of ports) {
    if (!port) continue // 0: any free port; undefined: not listened on
    const other = seen.get(port)
    if (other) throw new ConfigError(`${other} and ${name} are both ${port}: each listener needs a port of its own`)
    seen.set(port, name)
  }
}
