/**
 * Bearer-token authentication and role checks. A route states who may call it with
 * `config: { roles: [...] }`; routes without `roles` are public (health, metrics, docs).
 * `admin` may do everything an operator or analyst may.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Principal, Role, TokenRegistry } from '../auth/tokens.js'
import { HttpError } from './errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    roles?: Role[]
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}

export function registerAuth (app: FastifyInstance, tokens: TokenRegistry): void {
  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (request) => {
    const roles = request.routeOptions.config.roles
    if (!roles) return
    const principal = await authenticate(request, tokens)
    if (!principal) throw new HttpError(401, 'UNAUTHORIZED', 'missing or invalid bearer token')
    if (!(roles.includes(principal.role) || (principal.role === 'admin' && !roles.includes('gateway')))) {
      throw new HttpError(403, 'FORBIDDEN', `role ${principal.role} may not ${request.method} ${request.routeOptions.url}`)
    }
    request.principal = principal
  })
}

async function authenticate (request: FastifyRequest, tokens: TokenRegistry): Promise<Principal | null> {
  const token = bearerToken(request)
  return token ? tokens.resolve(token) : null
}

/** The request's bearer token, if it has one. */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  return (header ? /^Bearer\s+(\S+)$/i.exec(header) : null)?.[1]
}

/** The acting principal of an authenticated route (set by the hook above). */
export function actor (request: FastifyRequest): Principal {
  if (!request.principal) throw new HttpError(401, 'UNAUTHORIZED', 'missing or invalid bearer token')
  return request.principal
}
