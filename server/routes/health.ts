import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Registry } from 'prom-client'
import type { Database } from '../db/database.js'

/** Liveness, readiness (the database answers) and Prometheus metrics: public, for probes. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Database, metrics: Registry }> = async (app, { db, metrics }) => {
  app.get('/healthz', { schema: { tags: ['operations'] } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { schema: { tags: ['operations'] } }, async (_request, reply) => {
    try {
      await db.query('SELECT 1')
      return { status: 'ready', database: db.engine }
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
