/**
 * Static checks of everything Grafana provisions from `dashboards/`: the rules a dashboard or
 * alert file must follow so that a fresh `docker compose up` shows working dashboards.
 */
import { describe, expect, it } from 'vitest'
import { referencedNames } from './grafana/template.js'
import {
  DATASOURCE_UID, allPanels, loadAlertGroups, loadContactPoints, loadDashboards, loadYamlDir, panelQueries, variableSql
} from './grafana/provisioning.js'

const dashboards = loadDashboards()
const DS_TYPE = 'grafana-postgresql-datasource'
/** Grafana's own names: macros ($__timeFilter...) and global variables ($__interval...). */
const isBuiltin = (name: string) => name.startsWith('__')

describe('the provisioned datasource', () => {
  it('is PostgreSQL with the fixed uid every panel uses, expanding $__timeGroup without time_bucket', () => {
    const sources = loadYamlDir<{ datasources: any[] }>('datasources').flatMap((f) => f.doc.datasources)
    const ds = sources.find((s) => s.uid === DATASOURCE_UID)
    // timescaledb: false, so that the panels run on plain PostgreSQL too (the server supports it).
    expect(ds).toMatchObject({ type: DS_TYPE, jsonData: { timescaledb: false } })
    expect(ds.secureJsonData.password).toMatch(/^\$\{\w+\}$/)
  })
})

describe('every panel and alert-rule query', () => {
  const queries = [
    ...dashboards.flatMap(({ model }) => panelQueries(model).map((q) => ({ where: `${q.dashboard} › ${q.panel.title}`, sql: q.sql }))),
    ...loadAlertGroups().flatMap((g) => g.rules).flatMap((r) => r.data.filter((d) => d.model.rawSql).map((d) => ({ where: `rule ${r.uid}`, sql: String(d.model.rawSql) })))
  ]

  it('uses no TimescaleDB function: plain PostgreSQL runs them too', () => {
    for (const q of queries) expect(q.sql, q.where).not.toMatch(/\b(time_bucket|time_bucket_gapfill|locf|interpolate|first|last|histogram)\s*\(/i)
  })

  it('leaves drills out by their outcome, never by alerts.test, which the server never sets', () => {
    for (const q of queries) expect(q.sql, q.where).not.toMatch(/\b\w+\.test\b|\bNOT test\b/)
  })
})

describe('dashboards', () => {
  it('are the four analysts need, each a valid JSON model with a unique uid', () => {
    expect(dashboards.map((d) => d.file)).toEqual(['community.json', 'fleet-health.json', 'operations.json', 'response.json'])
    const uids = dashboards.map((d) => d.model.uid)
    expect(new Set(uids).size).toBe(uids.length)
    for (const { file, model } of dashboards) {
      expect(model.uid, file).toMatch(/^[a-zA-Z0-9_-]{1,40}$/)
      expect(model.title, file).toBeTruthy()
      expect(model.schemaVersion, file).toBeGreaterThanOrEqual(36)
      expect(Array.isArray(model.panels), file).toBe(true)
      expect(model).not.toHaveProperty('id') // a provisioned model must not pin a database id
    }
  })

  for (const { file, model } of dashboards) {
    describe(file, () => {
      const panels = allPanels(model)
      const queries = panelQueries(model)
      const variables = model.templating.list

      it('has unique panel ids, and panels that fit the 24-column grid without overlapping', () => {
        const ids = panels.map((p) => p.id)
        expect(ids.every((id) => Number.isInteger(id))).toBe(true)
        expect(new Set(ids).size).toBe(ids.length)
        const boxes = panels.map((p) => ({ id: p.id, ...p.gridPos! }))
        for (const b of boxes) {
          expect(b.w, `panel ${b.id} width`).toBeGreaterThan(0)
          expect(b.x + b.w, `panel ${b.id} right edge`).toBeLessThanOrEqual(24)
        }
        for (const a of boxes) {
          for (const b of boxes) {
            if (a.id >= b.id) continue
            const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
            expect(overlap, `panels ${a.id} and ${b.id} overlap`).toBe(false)
          }
        }
      })

      it('queries only the provisioned TimescaleDB datasource, in raw SQL', () => {
        expect(queries.length).toBeGreaterThan(0)
        for (const p of panels.filter((p) => p.type !== 'row')) {
          expect(p.datasource, `panel ${p.id}`).toEqual({ type: DS_TYPE, uid: DATASOURCE_UID })
          expect(p.targets?.length, `panel ${p.id} has queries`).toBeGreaterThan(0)
        }
        for (const q of queries) {
          const where = `${q.panel.title} / ${q.target.refId}`
          expect(q.target.datasource, where).toEqual({ type: DS_TYPE, uid: DATASOURCE_UID })
          expect(q.target.rawQuery, where).toBe(true)
          expect(q.target.editorMode, where).toBe('code')
          expect(['table', 'time_series'], where).toContain(q.target.format)
          expect(q.sql.trim(), where).toMatch(/^(SELECT|WITH)\b/i)
        }
        for (const v of variables.filter((v) => v.type === 'query')) {
          expect(v.datasource?.uid, `variable ${v.name}`).toBe(DATASOURCE_UID)
        }
      })

      it('has unique refIds per panel, and a time column in every time series query', () => {
        for (const p of panels) {
          const refIds = (p.targets ?? []).map((t) => t.refId)
          expect(new Set(refIds).size, p.title).toBe(refIds.length)
        }
        for (const q of queries.filter((q) => q.target.format === 'time_series')) {
          expect(q.sql, q.panel.title).toMatch(/\$__timeGroupAlias\(|AS "time"/)
          expect(q.sql, q.panel.title).toMatch(/ORDER BY 1\b/)
        }
      })

      it('has the zone and device-kind variables, defines every variable a query uses, and uses every one it defines', () => {
        const names = variables.map((v) => v.name)
        expect(names).toEqual(expect.arrayContaining(['zone', 'kind']))
        expect(new Set(names).size).toBe(names.length)
        const used = new Set(queries.flatMap((q) => referencedNames(q.sql)))
        for (const name of used) {
          if (!isBuiltin(name)) expect(names, `$${name} in a query`).toContain(name)
        }
        for (const name of names) expect(used.has(name), `$${name} is used`).toBe(true)
        for (const v of variables) {
          // A constant (the ward's time zone) is one value written into the SQL, hidden.
          if (v.type === 'constant') {
            expect(v.multi || v.includeAll, `${v.name} is one value`).toBeFalsy()
            continue
          }
          expect(v.multi && v.includeAll, `${v.name} is multi-value with All`).toBe(true)
          if (v.type === 'query') expect(variableSql(v), v.name).toMatch(/^SELECT\b/i)
          if (v.type === 'custom') expect(v.options?.map((o) => o.value)).toEqual(['$__all', ...String(v.query).split(',')])
        }
        // Multi-value variables sit in IN (...) lists: `= $zone` would break with two zones.
        for (const q of queries) expect(q.sql, q.panel.title).not.toMatch(/=\s*\$\{?(zone|kind|alert_kind)\b/)
      })

      it('filters every query that reads zone data by the selected zones', () => {
        for (const q of queries) expect(q.sql, q.panel.title).toMatch(/\bIN \(\$zone\)/)
      })
    })
  }
})

describe('alert rules and contact points', () => {
  const groups = loadAlertGroups()
  const rules = groups.flatMap((g) => g.rules)
  const contactPoints = loadContactPoints()

  it('defines the three rules the ward needs, with unique uids, in a folder and on an interval', () => {
    expect(rules.map((r) => r.uid).sort()).toEqual(['sos-gateway-lost', 'sos-panic-unacknowledged', 'sos-zone-devices-offline'])
    expect(new Set(rules.map((r) => r.uid)).size).toBe(rules.length)
    for (const g of groups) {
      expect(g.folder).toBeTruthy()
      expect(g.interval).toMatch(/^\d+[smh]$/)
    }
  })

  it('puts the rules in the dashboards\' folder, named by title alone (a folder uid beside it made Grafana create a second folder)', () => {
    const providers = loadYamlDir<{ providers?: Array<{ folder?: string, folderUid?: string }> }>('dashboards').flatMap(({ doc }) => doc.providers ?? [])
    expect(providers.length).toBeGreaterThan(0)
    for (const provider of providers) expect(provider.folderUid).toBeUndefined()
    expect(new Set(groups.map((g) => g.folder))).toEqual(new Set(providers.map((p) => p.folder)))
  })

  it('queries the provisioned datasource or Grafana expressions, and the condition is one of its steps', () => {
    for (const rule of rules) {
      const refIds = rule.data.map((d) => d.refId)
      expect(refIds, rule.title).toContain(rule.condition)
      for (const d of rule.data) {
        expect([DATASOURCE_UID, '__expr__'], `${rule.title} ${d.refId}`).toContain(d.datasourceUid)
        expect(d.model.refId, `${rule.title} ${d.refId}`).toBe(d.refId)
        if (d.datasourceUid === DATASOURCE_UID) {
          expect(d.model).toMatchObject({ format: 'table', rawQuery: true, datasource: { uid: DATASOURCE_UID } })
          expect(d.model.rawSql).toMatch(/^SELECT\b/)
        } else {
          expect(refIds, `${rule.title}: ${d.refId} reads an existing step`).toContain(d.model.expression)
        }
      }
      expect(rule.noDataState).toBeDefined()
      expect(rule.execErrState).toBeDefined()
    }
  })

  it('fires on the thresholds the ward asked for: 2 minutes unacknowledged, more than N devices offline', () => {
    const threshold = (uid: string) => rules.find((r) => r.uid === uid)!.data.find((d) => d.model.type === 'threshold')!.model.conditions[0].evaluator
    expect(threshold('sos-panic-unacknowledged')).toEqual({ type: 'gt', params: [120] })
    expect(threshold('sos-zone-devices-offline').type).toBe('gt')
    // The server's GATEWAY_LOST_AFTER default.
    expect(threshold('sos-gateway-lost')).toEqual({ type: 'gt', params: [90] })
  })

  it('notifies a webhook contact point that exists', () => {
    const receivers = new Set(contactPoints.map((c) => c.name))
    for (const rule of rules) expect(receivers, rule.title).toContain(rule.notification_settings?.receiver)
    const webhook = contactPoints.find((c) => c.name === 'sos-webhook')!
    expect(webhook.receivers[0]).toMatchObject({ type: 'webhook', settings: { url: '${ALERT_WEBHOOK_URL}' } })
  })
})
