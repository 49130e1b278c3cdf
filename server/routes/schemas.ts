/** Schema pieces shared by several routes. */
import { Type } from '@fastify/type-provider-typebox'

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

export const dateOrUndefined = (value: string | undefined) => value === undefined ? undefined : new Date(value)

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) })
