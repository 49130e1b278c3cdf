/**
 * Which requests get the two per-request log lines. Gateways post batches and long-poll
 * hundreds of times a second: a line each would bury everything else and cost more CPU than
 * storing the batch. Their requests are logged only when they fail; everyone else's always.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

function isGatewayTraffic (request: FastifyRequest): boolean {
  return request.url.startsWith('/v1/ingest') || request.url.startsWith('/v1/gateway/')
}

export class RequestLogging extends LogController {
  override incomingRequest (request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (!isGatewayTraffic(request)) super.incomingRequest(request, reply, metadata)
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || reply.statusCode >= 400 || !isGatewayTraffic(request)) super.requestCompleted(error, request, reply, metadata)
  }
}
