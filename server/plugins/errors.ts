/**
 * Every error leaves as `{statusCode, code, message}`: 4xx say what the caller got wrong,
 * 5xx say nothing about internals (the details go to the log, never a stack trace to the client).
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import { readableValidationError } from './validation-messages.js'

export class HttpError extends Error {
  constructor (readonly statusCode: number, readonly code: string, message: string) {
    super(message)
  }
}

export const notFound = (what: string) => new HttpError(404, 'NOT_FOUND', `${what} not found`)
export const conflict = (message: string) => new HttpError(409, 'CONFLICT', message)

export function registerErrorHandling (app: FastifyInstance): void {
  // Before any route is registered: each route takes the formatter in place when it is added.
  app.setSchemaErrorFormatter(readableValidationError)
  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.status(statusCode).send({ statusCode, code: 'INTERNAL', message: 'Internal Server Error' })
    }
    const code = 'validation' in error && error.validation ? 'VALIDATION' : (error.code ?? 'BAD_REQUEST').replace(/^FST_ERR_/, '')
    return reply.status(statusCode).send({ statusCode, code, message: error.message })
  })
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ statusCode: 404, code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })
}
