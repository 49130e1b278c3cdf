import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Registry } from 'prom-client'
import type { Database } from '../db/database.js'
import { migrations } from '../db/migrations.js'

const LATEST_MIGRATION = Math.max(...migrations.map((m) => m.version))

/** Liveness, readiness (the database answers) and Prometheus metrics: public, for probes. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Database, metrics: Registry }> = async (app, { db, metrics }) => {
  app.get('/healthz', { schema: { tags: ['operations'] } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: { tags: ['operations'] } }, async (_request, reply) => {
    try {
      // Reachable and migrated to the schema this code expects.
      const rows = await db.query<{ version: number }>('SELECT COALESCE(max(version), 0)::int8 AS version FROM schema_migrations')
      const version = rows[0]?.version ?? 0
      if (version < LATEST_MIGRATION) {
        return reply.status(503).send({ statusCode: 503, code: 'NOT_READY', message: `database schema at version ${version}, expected ${LATEST_MIGRATION}` })
      }
      return { status: 'ready', database: db.engine, schemaVersion: version }
    } catch (err) {
      reply.log.warn({ err }, 'readiness: database unreachable')
      return reply.status(503).send({ statusCode: 503, code: 'NOT_READY', message: 'database unreachable' })
    }
  })

  app.get('/metrics', { schema: { tags: ['operations'] } }, async (_request, reply) => {
    reply.type(metrics.contentType)
    return metrics.metrics()
  })
}
