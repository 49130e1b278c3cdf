/**
 * The macro port behaves like Grafana: cases taken from grafana/grafana's
 * `pkg/tsdb/grafana-postgresql-datasource/macros_test.go` and the variable format tests.
 */
import { describe, expect, it } from 'vitest'
import { expandMacros, formatInterval, parseInterval, rfc3339Nano, type MacroOptions } from './grafana/macros.js'
import { ALL, interpolateVariables, type VariableValue } from './grafana/template.js'

const from = new Date(Date.UTC(2018, 3, 12, 18, 0, 0))
const to = new Date(from.getTime() + 5 * 60_000)
const plain: MacroOptions = { range: { from, to }, intervalMs: 10 * 60_000, timescaledb: false }
const ts: MacroOptions = { ...plain, timescaledb: true }

describe('Grafana PostgreSQL macros', () => {
  it('$__time and $__timeEpoch alias the column as "time"', () => {
    expect(expandMacros('select $__time(time_column)', plain)).toBe('select time_column AS "time"')
    expect(expandMacros('select min($__time(time_column))', plain)).toBe('select min(time_column AS "time")')
    expect(expandMacros('select $__timeEpoch(t)', plain)).toBe('select extract(epoch from t) as "time"')
  })

  it('$__timeFilter, $__timeFrom() and $__timeTo() use RFC 3339 in UTC', () => {
    expect(expandMacros('WHERE $__timeFilter(time_column)', plain))
      .toBe("WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'")
    expect(expandMacros('select $__timeFrom()', plain)).toBe("select '2018-04-12T18:00:00Z'")
    expect(expandMacros('select $__timeTo()', plain)).toBe("select '2018-04-12T18:05:00Z'")
  })

  it('keeps fractional seconds the way Go formats RFC3339Nano', () => {
    expect(rfc3339Nano(new Date(Date.UTC(1960, 1, 1, 7, 0, 0, 500)))).toBe('1960-02-01T07:00:00.5Z')
    expect(rfc3339Nano(new Date(Date.UTC(2020, 0, 1, 0, 0, 0, 120)))).toBe('2020-01-01T00:00:00.12Z')
    const old = { ...plain, range: { from: new Date(Date.UTC(1960, 1, 1, 7)), to: new Date(Date.UTC(1965, 1, 3, 8)) } }
    expect(expandMacros('WHERE $__timeFilter(time_column)', old))
      .toBe("WHERE time_column BETWEEN '1960-02-01T07:00:00Z' AND '1965-02-03T08:00:00Z'")
  })

  it('$__timeGroup without TimescaleDB, and the pre-5.3 alias when a comma follows', () => {
    expect(expandMacros("SELECT $__timeGroup(time_column,'5m')", plain)).toBe('SELECT floor(extract(epoch from time_column)/300)*300')
    expect(expandMacros("SELECT $__timeGroupAlias(time_column,'5m')", plain)).toBe('SELECT floor(extract(epoch from time_column)/300)*300 AS "time"')
    expect(expandMacros("SELECT $__timeGroup(time_column,'5m'), value", plain)).toBe('SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value')
    expect(expandMacros("SELECT $__timeGroup(time_column,'5m') as time, value", plain)).toBe('SELECT floor(extract(epoch from time_column)/300)*300 as time, value')
    expect(expandMacros("$__timeGroup(time_column , '5m')", plain)).toBe('floor(extract(epoch from time_column)/300)*300')
  })

  it('$__timeGroup becomes time_bucket with TimescaleDB', () => {
    expect(expandMacros("GROUP BY $__timeGroup(time_column,'5m')", ts)).toBe("GROUP BY time_bucket('300.000s',time_column)")
    expect(expandMacros("GROUP BY $__timeGroup(time_column , '5m')", ts)).toBe("GROUP BY time_bucket('300.000s',time_column)")
    expect(expandMacros("GROUP BY $__timeGroup(time_column , '20ms')", ts)).toBe("GROUP BY time_bucket('0.020s',time_column)")
    expect(expandMacros("SELECT $__timeGroupAlias(opened_at,'1h')", ts)).toBe(`SELECT time_bucket('3600.000s',opened_at) AS "time"`)
  })

  it('$__timeGroup with calendar units counts from now (12d = 1036800 s)', () => {
    expect(expandMacros("GROUP BY $__timeGroup(time_column , '12d')", ts)).toBe("GROUP BY time_bucket('1036800.000s',time_column)")
  })

  it('$__interval is substituted before the macros, so $__timeGroup(col, $__interval) works', () => {
    expect(expandMacros('SELECT $__interval, $__interval_ms', plain)).toBe('SELECT 10m, 600000')
    expect(expandMacros('SELECT $__timeGroupAlias(t, $__interval)', { ...ts, intervalMs: 30_000 }))
      .toBe(`SELECT time_bucket('30.000s',t) AS "time"`)
  })

  it('unix epoch macros', () => {
    expect(expandMacros('select $__unixEpochFilter(time)', plain)).toBe(`select time >= ${from.getTime() / 1000} AND time <= ${to.getTime() / 1000}`)
    expect(expandMacros('select $__unixEpochNanoFrom()', plain)).toBe(`select ${from.getTime()}000000`)
    expect(expandMacros("SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')", plain))
      .toBe('SELECT floor((time_column+time_adjustment)/300)*300 AS "time"')
    expect(expandMacros('select $__unixEpochFrom(), $__unixEpochTo()', plain)).toBe(`select ${from.getTime() / 1000}, ${to.getTime() / 1000}`)
  })

  it('reports unknown macros and bad intervals as errors, like the datasource', () => {
    expect(() => expandMacros('select $__nope(x)', plain)).toThrow('unknown macro "__nope"')
    expect(() => expandMacros("select $__timeGroup(x,'soon')", plain)).toThrow("error parsing interval 'soon'")
    expect(() => expandMacros('select $__timeGroup(x)', plain)).toThrow('needs time column and interval')
  })

  it('formats and parses intervals like gtime', () => {
    expect(formatInterval(90_000)).toBe('1m')
    expect(formatInterval(2 * 86_400_000)).toBe('2d')
    expect(formatInterval(0.5)).toBe('1ms')
    expect(parseInterval('1h30m')).toBe(5_400_000)
    expect(parseInterval('1.5s')).toBe(1500)
    expect(() => parseInterval('5 minutes')).toThrow('invalid duration')
  })
})

describe('Grafana SQL variable interpolation', () => {
  const zone: VariableValue = { name: 'zone', value: ['apd-1', "o'clock"], multi: true, includeAll: true, options: ['apd-1', 'apd-2', "o'clock"] }
  const single: VariableValue = { name: 'kind', value: "it's", multi: false }

  it('multi-value variables become a quoted list for IN (...)', () => {
    expect(interpolateVariables('zone IN ($zone)', [zone])).toBe("zone IN ('apd-1','o''clock')")
    expect(interpolateVariables('zone IN (${zone:sqlstring})', [zone])).toBe("zone IN ('apd-1','o''clock')")
    expect(interpolateVariables('zone IN ([[zone]])', [zone])).toBe("zone IN ('apd-1','o''clock')")
  })

  it('a single value is escaped but not quoted by default; :sqlstring quotes it', () => {
    expect(interpolateVariables("kind = '$kind'", [single])).toBe("kind = 'it''s'")
    expect(interpolateVariables('kind = ${kind:sqlstring}', [single])).toBe("kind = 'it''s'")
    expect(interpolateVariables('${kind:raw}|${zone:csv}|${zone:pipe}', [single, zone])).toBe("it's|apd-1,o'clock|apd-1|o'clock")
  })

  it('"All" expands to every option, or to the custom all value as written', () => {
    const all = { ...zone, value: ALL }
    expect(interpolateVariables('zone IN ($zone)', [all])).toBe("zone IN ('apd-1','apd-2','o''clock')")
    expect(interpolateVariables('zone IN (${zone:sqlstring})', [{ ...all, allValue: 'SELECT zone FROM devices' }]))
      .toBe('zone IN (SELECT zone FROM devices)')
  })

  it('leaves macros and unknown names alone, and substitutes built-ins', () => {
    const sql = 'SELECT $__timeGroupAlias(t, $__interval) FROM x WHERE $__timeFilter(t) AND a = $unknown AND b < $__to'
    expect(interpolateVariables(sql, [zone], { __to: '42' }))
      .toBe('SELECT $__timeGroupAlias(t, $__interval) FROM x WHERE $__timeFilter(t) AND a = $unknown AND b < 42')
  })
})
