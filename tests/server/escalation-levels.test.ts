/**
 * An escalation's level is a column of its audit-trail row (migration 14), written by the
 * escalator, not only words in its note: one pass can reach several levels at once (an
 * escalator catching up after a restart), and readers count the levels reached from it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import type { Database } from '../../server/db/database.js'

describe.each(databaseBackends)('escalation levels in the trail on $name', (backend) => {
  let fx: Fixture
  let db: Database
  let dispose: () => Promise<void>

  beforeAll(async () => {
    const opened = await backend.open()
    db = opened.db
    dispose = opened.dispose
    fx = await buildFixture(db, { settings: { escalateAfterMs: 60_000 } })
    await fx.app.services.escalator.stop()
    await fx.provision('btn-esc', { zone: 'zone-esc' })
    await fx.provision('btn-esc-old', { zone: 'zone-esc' })
    await fx.provision('btn-esc-new', { zone: 'zone-esc' })
  }, 180_000)

  afterAll(async () => {
    vi.useRealTimers()
    await fx?.app.close()
    await dispose?.()
  })

  it('a catch-up from level 0 to 4 in one pass writes level 4, the next pass level 5', async () => {
    const start = Date.now()
    vi.useFakeTimers({ toFake: ['Date'], now: start })
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-esc', { seq: 1, type: 'press' }, start - 270_000)] })
    expect(await fx.app.services.escalator.check()).toBe(1)
    vi.setSystemTime(start + 60_000)
    expect(await fx.app.services.escalator.check()).toBe(1)
    const rows = await db.query<{ level: number, note: string, actor: string }>(`
      SELECT level, note, actor FROM alert_transitions WHERE alert_id = $1 AND from_state = 'open' AND to_state = 'open' ORDER BY at, id`, [press!.alertId])
    expect(rows.map((r) => [r.level, r.actor])).toEqual([[4, 'system:escalation'], [5, 'system:escalation']])
    expect(rows[0]!.note).toMatch(/^escalated to level 4: /)
    // The other transitions have none.
    const others = await db.query<{ level: number | null }>(`
      SELECT level FROM alert_transitions WHERE alert_id = $1 AND (from_state IS DISTINCT FROM 'open' OR to_state <> 'open')`, [press!.alertId])
    expect(others).toEqual([{ level: null }])
  })

  it('a level past 32 767 (an alert ignored for weeks, or a press held as long) is written, and the pass escalates the others too', async () => {
    vi.useRealTimers()
    const now = Date.now()
    // 23 days at one level a minute: level 33 120, past a smallint.
    const [old] = await fx.ingest({ events: [gatewayEvent('btn-esc-old', { seq: 1, type: 'press' }, now - 23 * 86_400_000)] })
    const [fresh] = await fx.ingest({ events: [gatewayEvent('btn-esc-new', { seq: 1, type: 'press' }, now - 5 * 60_000)] })
    expect(await fx.app.services.escalator.check()).toBe(2)
    const levels = await db.query<{ alert_id: string, level: number }>(`
      SELECT alert_id, level FROM alert_transitions WHERE alert_id = ANY($1::text[]) AND level IS NOT NULL`, [[old!.alertId, fresh!.alertId]])
    expect(Object.fromEntries(levels.map((r) => [r.alert_id, Number(r.level)]))).toEqual({ [old!.alertId!]: expect.any(Number), [fresh!.alertId!]: 5 })
    expect(Number(levels.find((r) => r.alert_id === old!.alertId)!.level)).toBeGreaterThan(32_767)
  })
})
