/** `npm run server`: the server alone (PostgreSQL/TimescaleDB with DATABASE_URL, else embedded). */
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError, serverConfigFromEnv } from './config.js'
import { resolveAdminToken } from './admin-token.js'
import { startServer } from './server.js'

const log = pino({ level: process.env.LOG_LEVEL || 'info', name: 'server' })

try {
  const config = serverConfigFromEnv()
  const admin = resolveAdminToken(config.dataDir, config.adminToken)
  const server = await startServer({ ...config, adminToken: admin.token }, log)
  log.info({ url: `http://${config.httpHost}:${server.port}`, storage: server.db.engine }, 'server listening')
  if (admin.generated) process.stdout.write(`\nAdmin token (shown once, kept in ${admin.file}):\n  ${admin.token}\n\n`)
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'closing after an error')
    else log.info({ signal }, 'closing')
    await server.close()
  })
} catch (err) {
  if (err instanceof ConfigError) {
    log.fatal(err.message)
    process.exit(2)
  }
  throw err
}
