/**
 * PostgreSQL text and jsonb cannot hold U+0000, which JSON allows. One such character in one
 * event would fail its whole ingest batch, the gateway would resend the batch forever, and
 * every alert queued behind it would be stuck; in an operator's note it would be a 500.
 * So every string in a request body has NUL replaced by U+FFFD before validation.
 */
import type { FastifyInstance } from 'fastify'

export function registerStripNul (app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined && request.body !== null) request.body = withoutNul(request.body)
  })
}

export function withoutNul<T> (value: T): T {
  if (typeof value === 'string') return (value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value) as T
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = withoutNul(value[i])
    return value
  }
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) record[key] = withoutNul(record[key])
  }
  return value
}
