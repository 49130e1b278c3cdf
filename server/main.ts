/** `npm run server`: the server alone (PostgreSQL/TimescaleDB with DATABASE_URL, else embedded). */
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { serverConfigFromEnv } from './config.js'
import { bootFailure, logLevelFromEnv } from './boot-errors.js'
import { resolveAdminToken } from './admin-token.js'
import { startServer } from './server.js'

const log = pino({ level: logLevelFromEnv(), name: 'server' })

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
  const failure = bootFailure(err)
  if (!failure) throw err
  log.fatal(failure.line)
  process.exit(failure.exitCode)
}
