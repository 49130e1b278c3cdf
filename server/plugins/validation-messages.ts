/**
 * The message of a request the schemas refused, readable by the person who sent it. A field
 * that takes one of a few values (a TypeBox union of literals, an `anyOf` of `const`s) failed
 * with one "must be equal to constant" per value and then "must match a schema in anyOf":
 * which values, the caller could not tell. It now reads
 * `body/outcome must be one of: real, false_alarm, prank, accidental, test`.
 */
import type { FastifySchemaValidationError } from 'fastify'
import { NOT_BLANK } from '../routes/schemas.js'

interface UnionOfLiterals {
  /** The values its branches allow, in the schema's order. */
  values: unknown[]
  /** The branch errors it stands for (one "must be equal to constant" per value). */
  branches: FastifySchemaValidationError[]
}

/** Fastify's schema error formatter; `dataVar` is `body`, `querystring`, `params` or `headers`. */
export function readableValidationError (errors: FastifySchemaValidationError[], dataVar: string): Error {
  const allowedBy = allowedValuesOfUnions(errors)
  const explained = new Set([...allowedBy.values()].flatMap((union) => union.branches))
  const messages = new Set<string>()
  for (const error of errors) {
    if (explained.has(error)) continue
    const where = `${dataVar}${error.instancePath}`
    const allowed = allowedBy.get(error)?.values ?? (error.keyword === 'enum' ? error.params.allowedValues as unknown[] : undefined)
    if (allowed) messages.add(`${where} must be one of: ${allowed.map(shown).join(', ')}`)
    else if (error.keyword === 'additionalProperties') messages.add(`${where} must NOT have additional properties: ${shown(error.params.additionalProperty)}`)
    else if (error.keyword === 'pattern' && error.params.pattern === NOT_BLANK) messages.add(`${where} must not be blank`)
    else messages.add(`${where} ${error.message ?? 'is not valid'}`)
  }
  // `;` between messages: a list of values already has commas in it.
  return new Error([...messages].join('; '))
}

/**
 * Each `anyOf` failure whose branches all failed on `const`: a union of literals. Branch errors
 * come before their `anyOf` and sit under its schema path. A value of another type (`5` for a
 * string) fails each branch on its `type` as well: the same union, the same answer.
 */
function allowedValuesOfUnions (errors: FastifySchemaValidationError[]): Map<FastifySchemaValidationError, UnionOfLiterals> {
  const unions = new Map<FastifySchemaValidationError, UnionOfLiterals>()
  for (const error of errors) {
    if (error.keyword !== 'anyOf') continue
    const branches = errors.filter((e) => e.schemaPath.startsWith(`${error.schemaPath}/`))
    const literals = branches.filter((b) => b.keyword === 'const')
    // Every branch a literal (a `const`): a branch of another kind (a number) is no value to list.
    const branchOf = (e: FastifySchemaValidationError) => e.schemaPath.slice(error.schemaPath.length + 1).split('/')[0]
    const everyBranchLiteral = new Set(branches.map(branchOf)).size === new Set(literals.map(branchOf)).size
    if (literals.length === 0 || !everyBranchLiteral || !branches.every((b) => b.keyword === 'const' || b.keyword === 'type')) continue
    unions.set(error, { values: literals.map((b) => b.params.allowedValue), branches })
  }
  return unions
}

const shown = (value: unknown) => typeof value === 'string' ? value : JSON.stringify(value)
