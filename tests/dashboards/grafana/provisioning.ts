/**
 * Reads what Grafana provisions from `dashboards/`: dashboard JSON models, the datasource,
 * alert rules and contact points, as plain objects the tests check and run.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
/**
 * `dashboards/`, or another copy of it named by SOS_DASHBOARDS_DIR (to run these checks against
 * an older version: a test of a fix should fail there).
 */
export const dashboardsDir = process.env.SOS_DASHBOARDS_DIR || join(repoRoot, 'dashboards')
export const DATASOURCE_UID = 'sos-timescaledb'

export interface Target {
  refId: string
  rawSql?: string
  format?: string
  datasource?: { type?: string, uid?: string }
  [key: string]: unknown
}

export interface Panel {
  id: number
  type: string
  title: string
  gridPos?: { x: number, y: number, w: number, h: number }
  datasource?: { type?: string, uid?: string }
  targets?: Target[]
  panels?: Panel[]
  [key: string]: unknown
}

export interface Variable {
  name: string
  type: string
  query?: unknown
  definition?: string
  datasource?: { type?: string, uid?: string }
  multi?: boolean
  includeAll?: boolean
  allValue?: string | null
  current?: { text?: unknown, value?: unknown }
  options?: Array<{ text: string, value: string }>
}

export interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
  templating: { list: Variable[] }
  [key: string]: unknown
}

export interface DashboardFile {
  file: string
  text: string
  model: Dashboard
}

export function loadDashboards (): DashboardFile[] {
  const dir = join(dashboardsDir, 'json')
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((file) => {
    const text = readFileSync(join(dir, file), 'utf8')
    return { file, text, model: JSON.parse(text) as Dashboard }
  })
}

/** Every panel, rows' nested panels included (a collapsed row keeps its panels inside). */
export function allPanels (dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])
}

export interface PanelQuery {
  dashboard: string
  panel: Panel
  target: Target
  sql: string
}

export function panelQueries (dashboard: Dashboard): PanelQuery[] {
  return allPanels(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => ({
    dashboard: dashboard.title, panel, target, sql: target.rawSql ?? ''
  })))
}

/** A variable's SQL: a string, or `{ rawSql }` / `{ query }` in newer models. */
export function variableSql (variable: Variable): string | undefined {
  if (variable.type !== 'query') return undefined
  const q = variable.query
  if (typeof q === 'string') return q
  if (q && typeof q === 'object') {
    const o = q as Record<string, unknown>
    return (o.rawSql ?? o.query) as string | undefined
  }
  return variable.definition
}

export function loadYamlDir<T = any> (sub: string): Array<{ file: string, doc: T }> {
  const dir = join(dashboardsDir, 'provisioning', sub)
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
    .map((file) => ({ file, doc: parseYaml(readFileSync(join(dir, file), 'utf8')) as T }))
}

export interface AlertQuery {
  refId: string
  datasourceUid: string
  relativeTimeRange?: { from: number, to: number }
  model: Record<string, any>
}

export interface AlertRule {
  uid: string
  title: string
  condition: string
  for?: string
  data: AlertQuery[]
  labels?: Record<string, string>
  annotations?: Record<string, string>
  noDataState?: string
  execErrState?: string
  notification_settings?: { receiver: string }
  [key: string]: unknown
}

export interface AlertGroup {
  orgId?: number
  name: string
  folder: string
  interval: string
  rules: AlertRule[]
}

export function loadAlertGroups (): AlertGroup[] {
  return loadYamlDir<{ groups?: AlertGroup[] }>('alerting').flatMap(({ doc }) => doc.groups ?? [])
}

export function loadContactPoints (): Array<{ name: string, receivers: Array<{ uid: string, type: string, settings: Record<string, unknown> }> }> {
  return loadYamlDir<{ contactPoints?: any[] }>('alerting').flatMap(({ doc }) => doc.contactPoints ?? [])
}

/** The provisioned datasource's `jsonData` (what decides how Grafana expands `$__timeGroup`). */
export function datasourceJsonData (): { timescaledb?: boolean, [key: string]: unknown } {
  const sources = loadYamlDir<{ datasources?: Array<{ uid: string, jsonData?: Record<string, unknown> }> }>('datasources')
    .flatMap(({ doc }) => doc.datasources ?? [])
  const ds = sources.find((s) => s.uid === DATASOURCE_UID)
  if (!ds) throw new Error(`no provisioned datasource ${DATASOURCE_UID}`)
  return ds.jsonData ?? {}
}
