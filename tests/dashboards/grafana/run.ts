/**
 * Runs dashboard and alert-rule SQL the way Grafana would: dashboard variables first (the
 * browser's step), then the datasource's macros (the backend's step), then the database.
 */
import type { Queryable } from '../../../server/db/database.js'
import { expandMacros, parseInterval, type TimeRange } from './macros.js'
import { ALL, interpolateVariables, type VariableValue } from './template.js'
import { datasourceJsonData, variableSql, type AlertRule, type Dashboard, type Panel, type Variable } from './provisioning.js'

/** The datasource's `jsonData.timeInterval`: the smallest `$__interval` Grafana uses. */
const DATASOURCE_MIN_INTERVAL = '1m'
/** About one point per pixel of a full-width panel, as Grafana's maxDataPoints. */
const MAX_DATA_POINTS = 1000

/** `$__interval` of a panel: the range over the data points, never below the minimum interval. */
export function panelIntervalMs (panel: Panel, range: TimeRange): number {
  const min = parseInterval(String(panel.interval ?? DATASOURCE_MIN_INTERVAL))
  return Math.max(min, Math.ceil((range.to.getTime() - range.from.getTime()) / MAX_DATA_POINTS))
}

function builtins (range: TimeRange): Record<string, string> {
  return { __from: String(range.from.getTime()), __to: String(range.to.getTime()) }
}

/** The provisioned datasource's `timescaledb` switch: `$__timeGroup` becomes `time_bucket` when on. */
const timescaledb = (): boolean => datasourceJsonData().timescaledb === true

/** What the browser sends, then what the backend runs. */
export function renderSql (sql: string, variables: VariableValue[], range: TimeRange, intervalMs: number): string {
  return expandMacros(interpolateVariables(sql, variables, builtins(range)), { range, intervalMs, timescaledb: timescaledb() })
}

/** What Grafana selects when the dashboard loads: the variable's saved `current` value. */
export function defaultSelection (variable: Variable): string | string[] {
  const value = variable.current?.value
  const values = (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string')
  if (values.length === 0 || values.includes(ALL)) return ALL
  return variable.multi ? values : values[0]!
}

/**
 * The dashboard's variables with their options loaded from the database (query variables run
 * their SQL, as Grafana does on dashboard load) and the selection applied (unset: the
 * dashboard's default, as Grafana loads it).
 */
export async function resolveVariables (db: Queryable, dashboard: Dashboard, range: TimeRange,
  selection: Record<string, string | string[]> = {}): Promise<VariableValue[]> {
  const resolved: VariableValue[] = []
  for (const v of dashboard.templating.list) {
    let options: string[]
    const sql = variableSql(v)
    if (sql !== undefined) {
      const rows = await db.query<Record<string, unknown>>(renderSql(sql, resolved, range, parseInterval(DATASOURCE_MIN_INTERVAL)))
      options = rows.map((r) => String(r.__value ?? Object.values(r)[0]))
    } else {
      options = (v.options ?? []).map((o) => o.value).filter((value) => value !== ALL)
    }
    resolved.push({
      name: v.name, multi: v.multi, includeAll: v.includeAll, allValue: v.allValue ?? null, options, value: selection[v.name] ?? defaultSelection(v)
    })
  }
  return resolved
}

export interface PanelResult {
  panel: Panel
  refId: string
  sql: string
  rows: Array<Record<string, unknown>>
}

/** Runs every query of every panel; a failing query rejects with the panel, refId and SQL. */
export async function runDashboard (db: Queryable, dashboard: Dashboard, range: TimeRange,
  selection: Record<string, string | string[]> = {}): Promise<PanelResult[]> {
  const variables = await resolveVariables(db, dashboard, range, selection)
  const results: PanelResult[] = []
  for (const panel of dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])) {
    for (const target of panel.targets ?? []) {
      const sql = renderSql(target.rawSql ?? '', variables, range, panelIntervalMs(panel, range))
      try {
        results.push({ panel, refId: target.refId, sql, rows: await db.query(sql) })
      } catch (err) {
        throw new Error(`${dashboard.title} › ${panel.title} (${target.refId}): ${(err as Error).message}\n${sql}`)
      }
    }
  }
  return results
}

/**
 * Runs the queries of the one panel whose title matches (a pattern lets a test find a panel in an
 * older version of the dashboard too, under its old title).
 */
export async function runPanel (db: Queryable, dashboard: Dashboard, title: string | RegExp, range: TimeRange,
  selection: Record<string, string | string[]> = {}): Promise<PanelResult[]> {
  const matches = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])
    .filter((p) => typeof title === 'string' ? p.title === title : title.test(p.title))
  if (matches.length !== 1) throw new Error(`${dashboard.title}: ${matches.length} panels match ${String(title)}`)
  const panel = matches[0]!
  const variables = await resolveVariables(db, dashboard, range, selection)
  const results: PanelResult[] = []
  for (const target of panel.targets ?? []) {
    const sql = renderSql(target.rawSql ?? '', variables, range, panelIntervalMs(panel, range))
    try {
      results.push({ panel, refId: target.refId, sql, rows: await db.query(sql) })
    } catch (err) {
      throw new Error(`${dashboard.title} › ${panel.title} (${target.refId}): ${(err as Error).message}\n${sql}`)
    }
  }
  return results
}

export interface RuleEvaluation {
  rule: AlertRule
  sql: string
  rows: Array<Record<string, unknown>>
  /** Rows over the threshold: the alert instances that would fire, their text columns as labels. */
  firing: Array<{ labels: Record<string, string>, value: number }>
}

/** Runs a rule's SQL over its relative time range and applies its threshold step. */
export async function evaluateRule (db: Queryable, rule: AlertRule, now: Date): Promise<RuleEvaluation> {
  const query = rule.data.find((d) => d.datasourceUid !== '__expr__')!
  const seconds = query.relativeTimeRange ?? { from: 600, to: 0 }
  const range = { from: new Date(now.getTime() - seconds.from * 1000), to: new Date(now.getTime() - seconds.to * 1000) }
  const sql = expandMacros(query.model.rawSql, { range, intervalMs: query.model.intervalMs ?? 1000, timescaledb: timescaledb() })
  let rows: Array<Record<string, unknown>>
  try {
    rows = await db.query(sql)
  } catch (err) {
    throw new Error(`alert rule ${rule.uid}: ${(err as Error).message}\n${sql}`)
  }
  const threshold = rule.data.find((d) => d.model.type === 'threshold')!.model.conditions[0].evaluator as { type: string, params: number[] }
  const passes = (value: number) => {
    const [a = 0, b = 0] = threshold.params
    switch (threshold.type) {
      case 'gt': return value > a
      case 'lt': return value < a
      case 'within_range': return value > a && value < b
      case 'outside_range': return value < a || value > b
      default: throw new Error(`threshold type ${threshold.type} not supported by this check`)
    }
  }
  const firing = rows.map((row) => {
    const labels: Record<string, string> = {}
    const numbers: number[] = []
    for (const [key, value] of Object.entries(row)) {
      if (typeof value === 'number') numbers.push(value)
      else if (value !== null) labels[key] = String(value)
    }
    // Grafana's SQL alerting takes exactly one numeric column per row; the rest become labels.
    if (numbers.length !== 1) throw new Error(`alert rule ${rule.uid}: each row needs exactly one number, got ${JSON.stringify(row)}`)
    return { labels, value: numbers[0]! }
  }).filter((instance) => passes(instance.value))
  return { rule, sql, rows, firing }
}
