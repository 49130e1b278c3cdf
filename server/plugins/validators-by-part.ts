/**
 * Request validation, part by part. Addresses (path parameters, query strings, headers) come as
 * text: `?limit=50` is read as the number its schema says. A JSON body has its types already,
 * and a wrong one is the caller's mistake, answered 400: coerced, `"silent": null` provisioned
 * a loud "silent" alarm (false, during a hold-up), `"lat": null` put a device at 0,0, and
 * `"lat": true` or `[5]` at 1 or 5.
 * Both are fastify's own compiler (@fastify/ajv-compiler, with its formats), set differently.
 */
import AjvCompiler, { type ValidatorFactory } from '@fastify/ajv-compiler'

/** Defaults filled in; a property the schema does not know is refused, never dropped in silence. */
const SHARED = { removeAdditional: false, useDefaults: true } as const

export function validatorsByPart (): ValidatorFactory {
  const fromPool = AjvCompiler()
  // The app's Ajv options are these (fastify's `ajv` server option is not read).
  return (externalSchemas) => {
    const addresses = fromPool(externalSchemas, { customOptions: { ...SHARED, coerceTypes: 'array' } })
    const bodies = fromPool(externalSchemas, { customOptions: { ...SHARED, coerceTypes: false } })
    return (route) => route.httpPart === 'body'
      ? bodies(route)
      : addresses(route.httpPart === 'querystring' ? { ...route, schema: onlyKnownParameters(route.schema) } : route)
  }
}

/**
 * A query string's parameters are those its schema names: a misspelt filter
 * (`/v1/alerts?states=open`) filtered nothing, and a duty-room script asking for the open alerts
 * got the closed ones too. Refused by name (400), as a body's unknown property is.
 */
function onlyKnownParameters<S> (schema: S): S {
  const object = schema as { type?: unknown, additionalProperties?: unknown }
  return object.type === 'object' && object.additionalProperties === undefined ? { ...object, additionalProperties: false } as S : schema
}
