/** Schema pieces shared by several routes. */
import { Type } from '@fastify/type-provider-typebox'
import { HttpError } from '../plugins/errors.js'

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  message: Type.String()
}, { $id: 'Error' })

/** `limit` (1–1000), `from`, `to` on every list endpoint. */
export const Window = {
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' }))
}

/**
 * A `date-time` parameter as a Date. The format lets through what names no instant (a leap
 * second, 23:59:60, which JavaScript cannot hold; year 0, which PostgreSQL has not): the
 * caller's mistake, answered 400, not a 500 from the query.
 */
export function dateOrUndefined (value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined
  const date = new Date(value)
  const year = date.getUTCFullYear()
  if (Number.isNaN(date.getTime()) || year < 1 || year > 9999) throw new HttpError(400, 'VALIDATION', `${field} must be a date-time between years 1 and 9999 (no leap second): ${value.slice(0, 40)}`)
  return date
}

/**
 * A name a person reads (a device's on the console, a token's in the audit trail): at least one
 * character that is not white space. Spaces only, an alert showed a blank device name.
 */
export const NOT_BLANK = '\\S'

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) })

/**
 * What a `DELETE` that revokes answers, devices and tokens alike: revoking is idempotent (an
 * admin's script retries after a timeout and must not read its own success as a failure).
 */
export const revocationResponses = (what: string, made: 'provisioned' | 'issued') => ({
  204: Type.Null({ description: `The ${what} is revoked: by this call, or already by an earlier one (a retry answers 204 again)` }),
  404: Type.Ref('Error', { description: `No ${what} was ever ${made} with this id` })
})
