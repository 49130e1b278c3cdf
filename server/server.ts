/**
 * Starts the server: storage opened and migrated, the app listening. Used by the process
 * entry (server/main.ts), by `npm start` (start.ts) and by tests.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { openDatabase, type Database } from './db/database.js'
import { migrate } from './db/migrate.js'
import { applyStoragePolicies } from './db/timescale.js'
import { buildApp, type AppOptions } from './app.js'
import type { StaticToken } from './auth/tokens.js'
import { SERVER_DEFAULTS, type ServerConfig } from './config.js'

export interface RunningServer {
  app: FastifyInstance
  db: Database
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string
  port: number
  close(): Promise<void>
}

export async function startServer (config: ServerConfig, logger?: FastifyBaseLogger, options: Pick<AppOptions, 'starting'> = {}): Promise<RunningServer> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
  try {
    await migrate(db)
    const policies = await applyStoragePolicies(db, {
      compressAfterDays: config.eventsCompressAfterDays ?? SERVER_DEFAULTS.eventsCompressAfterDays,
      retentionDays: config.eventsRetentionDays ?? SERVER_DEFAULTS.eventsRetentionDays
    })
    if (policies === 'events-not-hypertable') {
      logger?.warn('TimescaleDB is installed but events is a plain table (the extension came after the schema): no compression or retention; events are kept until removed by hand')
    }
    const staticTokens: StaticToken[] = []
    if (config.adminToken) staticTokens.push({ token: config.adminToken, role: 'admin', name: 'admin' })
    if (config.gatewayToken) staticTokens.push({ token: config.gatewayToken, role: 'gateway', name: 'gateway' })
    const app = await buildApp({ db, staticTokens, logger, settings: config, starting: options.starting })
    await app.listen({ port: config.httpPort, host: config.httpHost })
    const address = app.server.address()
    const port = typeof address === 'object' && address ? address.port : config.httpPort
    return {
      app,
      db,
      port,
      url: `http://127.0.0.1:${port}`,
      async close () {
        // In-flight requests get a few seconds to finish; then every connection goes, so a
        // client that opened a socket and never sent a request cannot hold the shutdown
        // until Node's headers timeout (about a minute).
        const force = setTimeout(() => app.server.closeAllConnections(), 3000)
        await app.close()
        clearTimeout(force)
        await db.close()
      }
    }
  } catch (err) {
    await db.close().catch(() => {})
    throw err
  }
}
