/**
 * Grafana's dashboard-variable interpolation for SQL datasources, ported for tests: what the
 * browser does to a panel's `rawSql` before the backend expands macros.
 *
 * Sources (grafana/grafana): `variableRegex` in `public/app/features/variables/utils.ts`, the
 * format registry (`sqlstring`, `csv`, `raw`, ...), `SqlDatasource.interpolateVariable` in
 * `packages/grafana-sql` (the default format of SQL datasources), and scenes' `CustomAllValue`
 * (a variable's custom "All" value is inserted raw, whatever the format).
 */

export interface VariableValue {
  name: string
  /** Selected value(s); `ALL` means the "All" option. */
  value: string | string[]
  multi?: boolean
  includeAll?: boolean
  /** Custom "All" value, inserted as written. */
  allValue?: string | null
  /** Every option's value (what "All" expands to without a custom all value). */
  options?: string[]
}

export const ALL = '$__all'

// $var | [[var]] | [[var:fmt]] | ${var} | ${var.field} | ${var:fmt}
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g

export function quoteLiteral (value: string): string {
  return `'${value.replace(/'/g, "''")}'`
}

/** `SqlDatasource.interpolateVariable`: the format used when the query names none. */
function sqlDefaultFormat (value: string | string[], variable: VariableValue): string {
  if (typeof value === 'string') {
    return variable.multi || variable.includeAll ? quoteLiteral(value) : value.replace(/'/g, "''")
  }
  return value.map(quoteLiteral).join(',')
}

const FORMATS: Record<string, (value: string | string[]) => string> = {
  raw: (v) => Array.isArray(v) ? v.join(',') : v,
  csv: (v) => Array.isArray(v) ? v.join(',') : v,
  sqlstring: (v) => Array.isArray(v) ? v.map(quoteLiteral).join(',') : quoteLiteral(v),
  singlequote: (v) => (Array.isArray(v) ? v : [v]).map((x) => `'${x.replace(/'/g, "\\'")}'`).join(','),
  doublequote: (v) => (Array.isArray(v) ? v : [v]).map((x) => `"${x.replace(/"/g, '\\"')}"`).join(','),
  pipe: (v) => Array.isArray(v) ? v.join('|') : v,
  json: (v) => JSON.stringify(v)
}

/** Replaces dashboard variables in `sql`; unknown names (and Grafana macros) stay as written. */
export function interpolateVariables (sql: string, variables: VariableValue[], builtins: Record<string, string> = {}): string {
  const byName = new Map(variables.map((v) => [v.name, v]))
  return sql.replace(VARIABLE, (match, plain?: string, bracket?: string, bracketFmt?: string, braced?: string, _field?: string, bracedFmt?: string) => {
    const name = plain ?? bracket ?? braced ?? ''
    const format = bracketFmt ?? bracedFmt
    if (name in builtins) return builtins[name]!
    const variable = byName.get(name)
    if (!variable) return match
    const selected = variable.value
    const isAll = selected === ALL || (Array.isArray(selected) && selected.includes(ALL))
    if (isAll && variable.allValue) {
      return format === 'text' ? 'All' : variable.allValue
    }
    const value = isAll ? (variable.options ?? []) : selected
    if (format === undefined) return sqlDefaultFormat(value, variable)
    if (format === 'text') return Array.isArray(value) ? value.join(' + ') : value
    const formatter = FORMATS[format]
    if (!formatter) throw new Error(`variable format "${format}" is not supported by this port (in ${match})`)
    return formatter(value)
  })
}

/** The variable names a query refers to (for the "every variable is used" invariant). */
export function referencedNames (sql: string): string[] {
  return [...sql.matchAll(VARIABLE)].map((m) => m[1] ?? m[2] ?? m[4] ?? '')
}
