import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ROLES, type TokenRegistry } from '../auth/tokens.js'
import { IdParams, NOT_BLANK, revocationResponses } from './schemas.js'

/** API tokens for people and gateways (admin); a token is shown once, stored as a hash. */
export const tokenRoutes: FastifyPluginAsyncTypebox<{ tokens: TokenRegistry }> = async (app, { tokens }) => {
  app.post('/v1/tokens', {
    config: { roles: ['admin'] },
    schema: {
      tags: ['tokens'],
      body: Type.Object({
        role: Type.Union(ROLES.map((r) => Type.Literal(r))),
        name: Type.String({ minLength: 1, maxLength: 120, pattern: NOT_BLANK })
      }, { additionalProperties: false })
    }
  }, async (request, reply) => {
    const issued = await tokens.issue(request.body.role, request.body.name)
    reply.status(201)
    return { ...issued, role: request.body.role, name: request.body.name }
  })

  app.get('/v1/tokens', {
    config: { roles: ['admin'] },
    schema: { tags: ['tokens'], summary: 'Tokens issued (id, role, name, when, revoked): never the tokens themselves' }
  }, async () => tokens.list())

  app.delete('/v1/tokens/:id', {
    config: { roles: ['admin'] },
    schema: {
      tags: ['tokens'],
      summary: 'Revoke a token: refused from then on; revoking it again answers 204 too',
      params: IdParams,
      response: revocationResponses('token', 'issued')
    }
  }, async (request, reply) => {
    await tokens.revoke(request.params.id)
    return reply.status(204).send(null)
  })
}
