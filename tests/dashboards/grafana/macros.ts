/**
 * Grafana's server-side SQL macro expansion for the PostgreSQL datasource, ported so tests run
 * exactly the SQL Grafana would send to TimescaleDB.
 *
 * Sources (grafana/grafana): `pkg/tsdb/grafana-postgresql-datasource/sqleng/sql_engine.go`
 * (`Interpolate`: the global `$__interval`, `$__interval_ms`, `$__unixEpochFrom/To()`), then
 * `pkg/tsdb/grafana-postgresql-datasource/macros.go` (`postgresMacroEngine`), and
 * `gtime.ParseInterval` / `gtime.FormatInterval` from grafana-plugin-sdk-go. The order and the
 * quirks (the pre-5.3 `$__timeGroup(...),` alias, `%.3fs` buckets) are kept on purpose.
 */

export interface TimeRange {
  from: Date
  to: Date
}

export interface MacroOptions {
  range: TimeRange
  /** The query interval (what `$__interval` means): Grafana derives it from range and width. */
  intervalMs: number
  /** The datasource's `jsonData.timescaledb`: `$__timeGroup` becomes `time_bucket`. */
  timescaledb: boolean
}

export class MacroError extends Error {}

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** `gtime.FormatInterval`: the largest whole unit (y, d, h, m, s, ms). */
export function formatInterval (ms: number): string {
  const year = 365 * DAY
  if (ms >= year) return `${Math.floor(ms / year)}y`
  if (ms >= DAY) return `${Math.floor(ms / DAY)}d`
  if (ms >= HOUR) return `${Math.floor(ms / HOUR)}h`
  if (ms >= MINUTE) return `${Math.floor(ms / MINUTE)}m`
  if (ms >= SECOND) return `${Math.floor(ms / SECOND)}s`
  if (ms >= 1) return `${Math.floor(ms)}ms`
  return '1ms'
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: SECOND, m: MINUTE, h: HOUR }

/** `gtime.ParseInterval`: `Nd`, `Nw`, `NM`, `Ny` (calendar, from now in UTC) or a Go duration. */
export function parseInterval (input: string, now = new Date()): number {
  const calendar = /^(\d+)([dwMy])$/.exec(input)
  if (calendar) {
    const n = Number(calendar[1])
    const later = new Date(now.getTime())
    switch (calendar[2]) {
      case 'd': later.setUTCDate(later.getUTCDate() + n); break
      case 'w': later.setUTCDate(later.getUTCDate() + 7 * n); break
      case 'M': later.setUTCMonth(later.getUTCMonth() + n); break
      default: later.setUTCFullYear(later.getUTCFullYear() + n)
    }
    return later.getTime() - now.getTime()
  }
  return parseGoDuration(input)
}

/** Go's `time.ParseDuration`: a sequence of decimal numbers with units, e.g. `1h30m`, `20ms`. */
function parseGoDuration (input: string): number {
  const match = /^([-+]?)((?:\d*\.?\d+(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(input)
  if (!match || input === '') throw new MacroError(`time: invalid duration "${input}"`)
  let total = 0
  for (const part of match[2]!.matchAll(/(\d*\.?\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * GO_UNITS[part[2]!]!
  }
  return match[1] === '-' ? -total : total
}

/** Go's `time.RFC3339Nano` in UTC: fractional seconds without trailing zeros. */
export function rfc3339Nano (date: Date): string {
  return date.toISOString().replace(/\.(\d*?)0*Z$/, (_, digits: string) => digits ? `.${digits}Z` : 'Z')
}

/** `sqleng.Interpolate`: the substitutions every SQL datasource shares. */
function interpolateGlobal (sql: string, options: MacroOptions): string {
  const { range, intervalMs } = options
  return sql
    .replaceAll('$__interval_ms', String(Math.trunc(intervalMs)))
    .replaceAll('$__interval', formatInterval(intervalMs))
    .replaceAll('$__unixEpochFrom()', String(Math.floor(range.from.getTime() / 1000)))
    .replaceAll('$__unixEpochTo()', String(Math.floor(range.to.getTime() / 1000)))
}

const MACRO = /\$([_a-zA-Z0-9]+)\(([^)]*)\)/g

/** Expands Grafana's macros the way the PostgreSQL datasource backend does before running SQL. */
export function expandMacros (sql: string, options: MacroOptions): string {
  const global = interpolateGlobal(sql, options)
  let firstError: Error | undefined
  const expanded = global.replace(MACRO, (whole: string, name: string, rawArgs: string) => {
    // Grafana < 5.3 compatibility: `$__timeGroup(...)` directly followed by ',' adds the alias.
    // Grafana checks the first occurrence of the same text in the query, so do we.
    let macro = name
    if (macro === '__timeGroup') {
      const index = global.indexOf(whole)
      if (index >= 0 && global[index + whole.length] === ',') macro = '__timeGroupAlias'
    }
    const args = rawArgs.split(',').map((a) => a.replace(/^ +| +$/g, ''))
    try {
      return evaluateMacro(macro, args, options)
    } catch (err) {
      firstError ??= err as Error
      return 'macro_error()'
    }
  })
  if (firstError) throw firstError
  return expanded
}

function evaluateMacro (name: string, args: string[], options: MacroOptions): string {
  const { from, to } = options.range
  const column = (): string => {
    // strings.Split("") yields [""], so Grafana's len(args) == 0 never fires for `$__time()`;
    // an empty column then produces broken SQL, which the database reports. Same here.
    if (args.length === 0) throw new MacroError(`missing time column argument for macro ${name}`)
    return args[0]!
  }
  switch (name) {
    case '__time': return `${column()} AS "time"`
    case '__timeEpoch': return `extract(epoch from ${column()}) as "time"`
    case '__timeFilter': return `${column()} BETWEEN '${rfc3339Nano(from)}' AND '${rfc3339Nano(to)}'`
    case '__timeFrom': return `'${rfc3339Nano(from)}'`
    case '__timeTo': return `'${rfc3339Nano(to)}'`
    case '__timeGroup': {
      const seconds = groupSeconds(name, args)
      if (options.timescaledb) return `time_bucket('${seconds.toFixed(3)}s',${args[0]})`
      return `floor(extract(epoch from ${args[0]})/${goFloat(seconds)})*${goFloat(seconds)}`
    }
    case '__timeGroupAlias': return `${evaluateMacro('__timeGroup', args, options)} AS "time"`
    case '__unixEpochFilter': {
      const col = column()
      return `${col} >= ${Math.floor(from.getTime() / 1000)} AND ${col} <= ${Math.floor(to.getTime() / 1000)}`
    }
    case '__unixEpochNanoFilter': {
      const col = column()
      return `${col} >= ${nanos(from)} AND ${col} <= ${nanos(to)}`
    }
    case '__unixEpochNanoFrom': return nanos(from)
    case '__unixEpochNanoTo': return nanos(to)
    case '__unixEpochGroup': {
      const seconds = groupSeconds(name, args)
      return `floor((${args[0]})/${goFloat(seconds)})*${goFloat(seconds)}`
    }
    case '__unixEpochGroupAlias': return `${evaluateMacro('__unixEpochGroup', args, options)} AS "time"`
    default: throw new MacroError(`unknown macro "${name}"`)
  }
}

/** The bucket width of `$__timeGroup(col, interval[, fill])` in seconds. */
function groupSeconds (name: string, args: string[]): number {
  if (args.length < 2) throw new MacroError(`macro ${name} needs time column and interval and optional fill value`)
  const raw = args[1]!.replace(/^'+|'+$/g, '')
  try {
    return parseInterval(raw) / 1000
  } catch {
    throw new MacroError(`error parsing interval ${args[1]}`)
  }
}

/** Go's `%v` of a float64: `300`, `0.02`. */
function goFloat (value: number): string {
  return String(value)
}

function nanos (date: Date): string {
  return (BigInt(date.getTime()) * 1_000_000n).toString()
}
