/**
 * The lists' pages over HTTP (db/keyset-paging.ts orders and cuts them). A full page answers
 * with `Link: <…>; rel="next"` (RFC 8288) whose `cursor` names its last row: asking that URL
 * gives the page right after it, the other parameters as they were.
 */
import { Type } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { HttpError } from '../plugins/errors.js'
import { POSITION_RANGE, type Paged, type Position } from '../db/keyset-paging.js'
import { Window } from './schemas.js'

/** `limit`, `from`, `to` and `cursor`: what every paged list takes. */
export const Page = {
  ...Window,
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400, description: 'Where the page starts: take it from the `Link: <…>; rel="next"` header of the page before' }))
}

/** A text id: any characters but NUL, which PostgreSQL's text cannot hold (and refused with a 500). */
const TEXT_ID = /^[^\u0000]+$/

/**
 * The cursor's position, or undefined without one; a cursor this server did not write is a 400.
 * `idPattern`: what the list's ids look like when they are not text (dead letters' are numbers).
 */
export function readCursor (cursor: string | undefined, idPattern = TEXT_ID): Position | undefined {
  if (cursor === undefined) return undefined
  try {
    const [time, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[]
    if (typeof time === 'string' && /^-?\d{1,19}$/.test(time) && typeof id === 'string' && idPattern.test(id) &&
      BigInt(time) >= POSITION_RANGE.first && BigInt(time) <= POSITION_RANGE.last) return { time, id }
  } catch { /* answered below */ }
  throw new HttpError(400, 'VALIDATION', 'cursor is not one this server gave: take it from the Link header of the page before')
}

/** Answers a page: its items, and the `Link` to the next page when there is one. */
export function sendPage<T> (request: FastifyRequest, reply: FastifyReply, page: Paged<T>): T[] {
  if (page.next) {
    const url = new URL(request.url, 'http://self')
    url.searchParams.set('cursor', Buffer.from(JSON.stringify([page.next.time, page.next.id])).toString('base64url'))
    reply.header('link', `<${url.pathname}${url.search}>; rel="next"`)
  }
  return page.items
}
