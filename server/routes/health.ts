import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import type { Registry } from 'prom-client'
import type { Database } from '../db/database.js'
import { migrations } from '../db/migrations.js'

const LATEST_MIGRATION = Math.max(...migrations.map((m) => m.version))

/**
 * Liveness, readiness (the database answers, and the escalator is not stalled) and Prometheus
 * metrics: public, for probes. `starting` names a part of the same process that is not up yet
 * (the gateway under `npm start`): until it is, both probes answer 503, so whoever waits for
 * them (a script, an orchestrator) does not connect devices to a listener that is not there yet.
 *
 * Ready means this instance can do the server's work, as the gateway's `/readyz` counts its
 * outbox: an escalator that has completed no pass for minutes (see escalator.ts) lets an
 * unacknowledged panic go unescalated while everything else answers, so it is not ready. Other
 * instances behind the load balancer, whose escalators escalate every alert of the database,
 * then take its traffic; a lone instance shows it on every probe and monitor. Not liveness:
 * its passes are bounded (a hung one is abandoned), so what stalls it is the database, which a
 * restart does not mend.
 */
export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Database, metrics: Pick<Registry, 'contentType' | 'metrics'>, starting?: () => string | undefined }> = async (app, { db, metrics, starting }) => {
  const notYet = (reply: FastifyReply): FastifyReply | undefined => {
    const part = starting?.()
    return part === undefined ? undefined : reply.status(503).send({ statusCode: 503, code: 'STARTING', message: `${part} is still starting` })
  }

  app.get('/healthz', { schema: { tags: ['operations'] } }, async (_request, reply) => notYet(reply) ?? { status: 'ok' })

  app.get('/readyz', { schema: { tags: ['operations'] } }, async (_request, reply) => {
    const early = notYet(reply)
    if (early) return early
    try {
      // Reachable and migrated to the schema this code expects.
      const rows = await db.query<{ version: number }>('SELECT COALESCE(max(version), 0)::int8 AS version FROM schema_migrations')
      const version = rows[0]?.version ?? 0
      if (version < LATEST_MIGRATION) {
        return reply.status(503).send({ statusCode: 503, code: 'NOT_READY', message: `database schema at version ${version}, expected ${LATEST_MIGRATION}` })
      }
      const stalledMs = app.hasDecorator('services') ? app.services.escalator.stalledForMs() : undefined
      if (stalledMs !== undefined) {
        reply.log.warn({ stalledMs: Math.round(stalledMs) }, 'readiness: the escalator has completed no pass')
        return reply.status(503).send({ statusCode: 503, code: 'NOT_READY', message: `escalator has completed no pass for ${Math.round(stalledMs / 1000)} s` })
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
