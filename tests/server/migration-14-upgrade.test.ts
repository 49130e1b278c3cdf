/**
 * Migration 14 on a store that has history: alerts get the time they were raised (their opening
 * transition's, i.e. opened_at before a late press moved it back; opened_at when the trail has
 * no opening row), every transition row the raised_at of its alert, and escalations the level
 * their note says. The KPIs of those alerts then count from the raise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import { migrations } from '../../server/db/migrations.js'
import type { Database } from '../../server/db/database.js'

const T0 = Date.UTC(2025, 0, 15, 10, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()

describe.each(databaseBackends)('migration 14 on $name', (backend) => {
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    db = opened.db
    dispose = opened.dispose
    await migrateUpTo(db, 13)
    await db.query("INSERT INTO devices (id, kind, name, zone, secret_hash) VALUES ('btn-old', 'button', 'old', 'zone-old', 'unused')")
    // Raised at T0 (its opening transition), acknowledged 30 s later, escalated twice before
    // (levels 1, then 3 in one pass); a press held 10 min arrived later and moved opened_at back.
    await db.query(`INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, acknowledged_at, resolved_at, outcome, last_press_at, escalation_level)
      VALUES ('a-old', 'btn-old', 'panic', 'resolved', 'zone-old', $1, $2, $3, 'real', $1, 3)`, [iso(T0 - 600_000), iso(T0 + 30_000), iso(T0 + 300_000)])
    // Each row with the alert's snapshot after the change, as version 13 wrote it.
    const transition = (from: string | null, to: string, at: number, actor: string, note: string | null, openedAt: number) => db.query(`
      INSERT INTO alert_transitions (alert_id, from_state, to_state, at, actor, note, device_id, zone, kind, test, opened_at, outcome, first_response_at)
      VALUES ('a-old', $1, $2, $3, $4, $5, 'btn-old', 'zone-old', 'panic', false, $6,
        CASE WHEN $2 = 'resolved' THEN 'real' END, CASE WHEN $2 IN ('acknowledged', 'resolved') THEN $7::timestamptz END)`,
    [from, to, iso(at), actor, note, iso(openedAt), iso(T0 + 30_000)])
    await transition(null, 'open', T0, 'device:btn-old', null, T0)
    await transition('open', 'open', T0 + 10_000, 'system:escalation', 'escalated to level 1: not acknowledged after 10 s', T0)
    await transition('open', 'open', T0 + 20_000, 'system:escalation', 'escalated to level 3: not acknowledged after 20 s', T0)
    await transition('open', 'acknowledged', T0 + 30_000, 'operator-1', null, T0)
    await transition('acknowledged', 'resolved', T0 + 300_000, 'operator-1', null, T0 - 600_000)
    // An alert with no opening row in the trail: raised when opened.
    await db.query(`INSERT INTO alerts (id, device_id, kind, state, zone, opened_at, acknowledged_at, last_press_at)
      VALUES ('a-bare', 'btn-old', 'tamper', 'acknowledged', 'zone-old', $1, $2, $1)`, [iso(T0), iso(T0 + 60_000)])
    await migrate(db)
  }, 180_000)

  afterAll(async () => { await dispose?.() })

  it('fills raised_at on alerts and on their transitions, and escalation levels from the notes', async () => {
    const alerts = await db.query<{ id: string, raised_at: Date }>('SELECT id, raised_at FROM alerts ORDER BY id')
    expect(alerts).toEqual([{ id: 'a-bare', raised_at: new Date(T0) }, { id: 'a-old', raised_at: new Date(T0) }])
    const trail = await db.query<{ to_state: string, raised_at: Date, level: number | null }>(
      "SELECT to_state, raised_at, level FROM alert_transitions WHERE alert_id = 'a-old' ORDER BY at")
    expect(trail).toEqual([
      { to_state: 'open', raised_at: new Date(T0), level: null },
      { to_state: 'open', raised_at: new Date(T0), level: 1 },
      { to_state: 'open', raised_at: new Date(T0), level: 3 },
      { to_state: 'acknowledged', raised_at: new Date(T0), level: null },
      { to_state: 'resolved', raised_at: new Date(T0), level: null }
    ])
  })

  it('counts the old alerts\' KPIs from the raise, and the person\'s wait from the press', async () => {
    const kpis = await db.query('SELECT alert_id, ack_seconds, resolve_seconds, wait_seconds FROM alert_response_times ORDER BY alert_id')
    expect(kpis).toEqual([
      { alert_id: 'a-bare', ack_seconds: 60, resolve_seconds: null, wait_seconds: 60 },
      { alert_id: 'a-old', ack_seconds: 30, resolve_seconds: 300, wait_seconds: 630 }
    ])
    const hourly = await db.query('SELECT responded, ack_seconds_sum, resolve_seconds_sum, wait_seconds_sum FROM alert_response_hourly')
    expect(hourly).toEqual([{ responded: 1, ack_seconds_sum: 30, resolve_seconds_sum: 300, wait_seconds_sum: 630 }])
  })
})

/** The real runner on the migrations shipped up to `version`: a store as that version left it. */
async function migrateUpTo (db: Database, version: number): Promise<void> {
  const cut = migrations.findIndex((m) => m.version > version)
  if (cut < 0) throw new Error(`no migration after version ${version}`)
  const later = migrations.splice(cut)
  try {
    await migrate(db)
  } finally {
    migrations.push(...later)
  }
}
