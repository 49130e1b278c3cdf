/**
 * Text PostgreSQL cannot store, made storable before validation: U+0000 (legal JSON, refused
 * by text and jsonb) and lone UTF-16 surrogates (legal JSON escapes like `\ud800`, refused by
 * jsonb), in every string of a request body and in its keys, become U+FFFD. One such character
 * in one event would fail its whole ingest batch (the server then splits the batch to find it,
 * at a cost); in an operator's note it would be a 500. A real gateway never forwards either,
 * but a buggy or forged one could.
 */
import type { FastifyInstance } from 'fastify'

export function registerStorableText (app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined && request.body !== null) request.body = storableText(request.body)
  })
}

export function storableText<T> (value: T): T {
  if (typeof value === 'string') return storableString(value) as T
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = storableText(value[i])
    return value
  }
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      const clean = storableString(key)
      const item = storableText(record[key])
      if (clean === key) {
        record[key] = item
      } else {
        // Renamed in place of the old key (a clean key of the same name, if any, is kept).
        delete record[key]
        if (!Object.hasOwn(record, clean)) record[clean] = item
      }
    }
  }
  return value
}

function storableString (text: string): string {
  const wellFormed = text.isWellFormed() ? text : text.toWellFormed()
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\uFFFD') : wellFormed
}
