/**
 * Text PostgreSQL cannot store, made storable before validation: U+0000 (legal JSON, refused
 * by text and jsonb) and lone UTF-16 surrogates (legal JSON escapes like `\ud800`, refused by
 * jsonb), in every string of a request body and in its keys, and in the query string and the
 * path's parameters, become U+FFFD; so does text that would show other than it reads (below). One such character
 * in one event would fail its whole ingest batch (the server then splits the batch to find it,
 * at a cost); in an operator's note it would be a 500. A real gateway never forwards either,
 * but a buggy or forged one could.
 */
import type { FastifyInstance } from 'fastify'

export function registerStorableText (app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.body !== undefined && request.body !== null) request.body = storableText(request.body)
    // A filter or an id in the address reaches a query too (`?zone=%00`, `/v1/devices/%00`).
    storableText(request.query)
    storableText(request.params)
  })
}

/**
 * Cleans in place, walking with a stack of its own rather than recursion: a body nested a
 * hundred thousand deep (a few hundred kilobytes of brackets) must get its 400, not overflow the
 * call stack into a 500.
 */
export function storableText<T> (value: T): T {
  if (typeof value === 'string') return storableString(value) as T
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const item = pending.pop()
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) {
        if (typeof item[i] === 'string') item[i] = storableString(item[i])
        else if (typeof item[i] === 'object' && item[i] !== null) pending.push(item[i])
      }
    } else if (typeof item === 'object' && item !== null) {
      const record = item as Record<string, unknown>
      for (const key of Object.keys(record)) {
        const clean = storableString(key)
        let child = record[key]
        if (typeof child === 'string') child = storableString(child)
        else if (typeof child === 'object' && child !== null) pending.push(child)
        if (clean === key) {
          record[key] = child
        } else {
          // Renamed in place of the old key (a clean key of the same name, if any, is kept).
          delete record[key]
          if (!Object.hasOwn(record, clean)) record[clean] = child
        }
      }
    }
  }
  return value
}

/**
 * Besides NUL, what no person types and an operator must not be shown: C0 controls but tab, line
 * feed and carriage return, DEL, and the bidi embeddings, overrides and isolates, which turn
 * the text after them around on screen (a resident's "call back 0901234567" read as
 * 7654321090, a gateway `gw-north` + U+202E + `1-tsol` shown as "gw-northlost-1").
 */
const UNSHOWN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202a-\u202e\u2066-\u2069]/
const UNSHOWN_ALL = new RegExp(UNSHOWN.source, 'g')

function storableString (text: string): string {
  const wellFormed = text.isWellFormed() ? text : text.toWellFormed()
  return UNSHOWN.test(wellFormed) ? wellFormed.replace(UNSHOWN_ALL, '\uFFFD') : wellFormed
}
