/**
 * Every error leaves as `{statusCode, code, message}`: 4xx say what the caller got wrong,
 * 5xx say nothing about internals (the details go to the log, never a stack trace to the client).
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { readableValidationError } from './validation-messages.js'
import { databaseUnreachable, outageLines, UNREACHABLE } from '../db/unreachable.js'

export class HttpError extends Error {
  constructor (readonly statusCode: number, readonly code: string, message: string) {
    super(message)
  }
}

export const notFound = (what: string) => new HttpError(404, 'NOT_FOUND', `${what} not found`)
export const conflict = (message: string) => new HttpError(409, 'CONFLICT', message)

/** How long a client should wait before it tries again while the database is unreachable. */
export const DATABASE_RETRY_AFTER_S = 5

export function registerErrorHandling (app: FastifyInstance): void {
  // Before any route is registered: each route takes the formatter in place when it is added.
  app.setSchemaErrorFormatter(readableValidationError)
  const outage = outageLines((_, requests) => app.log.error({ requests }, `more requests failed: ${UNREACHABLE} (answered 503, not logged one by one)`))
  app.addHook('onClose', async () => outage.flush())
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (statusCode === 500 && databaseUnreachable(error)) {
      if (outage.allows('database')) request.log.error({ err: error }, `request failed: ${UNREACHABLE}`)
      return reply.status(503).header('retry-after', String(DATABASE_RETRY_AFTER_S)).send({
        statusCode: 503,
        code: 'DATABASE_UNAVAILABLE',
        // A write cut off at its COMMIT may have been stored all the same: retrying blindly, a
        // token or an announcement was made twice (review 73).
        message: 'the database cannot be reached or has no free connection: this request may or may not have taken effect; check before repeating it'
      })
    }
    if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.status(statusCode).send({ statusCode, code: 'INTERNAL', message: 'Internal Server Error' })
    }
    const code = 'validation' in error && error.validation ? 'VALIDATION' : codeOf(error)
    return reply.status(statusCode).send({ statusCode, code, message: error.message })
  })
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ statusCode: 404, code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })
}

/** Our name of an error fastify raised itself: `FST_ERR_BAD_URL` is `BAD_URL`. */
const codeOf = (error: { code?: string }) => (error.code ?? 'BAD_REQUEST').replace(/^FST_ERR_/, '')

/**
 * Errors the router raises before any route or error handler runs (a path that is not valid
 * percent-encoding, a parameter over its length): in the same shape as every other answer.
 */
export function frameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  void reply.status(statusCode).send({ statusCode, code: codeOf(error), message: error.message })
}

/**
 * A request Node's HTTP parser refused before fastify saw it (headers over the limit, a
 * malformed request line or header): answered in the same shape too, then the socket closed, as
 * Node and fastify do (the request cannot be read on, so neither can the connection).
 */
export function clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [statusCode, code, message] = err.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'HEADERS_TOO_LARGE', 'the request\'s headers are larger than this server reads']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request did not arrive in time']
      : [400, 'MALFORMED_REQUEST', `the request could not be read as HTTP (${err.code ?? 'parse error'})`]
  const body = JSON.stringify({ statusCode, code, message })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}
