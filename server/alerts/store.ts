/** Reading alerts for operators and analysts. */
import type { Queryable } from '../db/database.js'
import { notFound } from '../plugins/errors.js'
import { paged, positionOf, afterPosition, type Paged, type Position } from '../db/keyset-paging.js'
import { alertVersion, type AlertKind, type AlertState, type Outcome } from './model.js'

export interface AlertView {
  id: string
  deviceId: string
  deviceName: string | null
  kind: AlertKind
  state: AlertState
  zone: string
  lat: number | null
  lon: number | null
  test: boolean
  openedAt: string
  acknowledgedAt: string | null
  dispatchedAt: string | null
  resolvedAt: string | null
  cancelledAt: string | null
  outcome: Outcome | null
  pressCount: number
  lastPressAt: string
  /** How many times it escalated unacknowledged (0 = never). */
  escalationLevel: number
  escalatedAt: string | null
  /** Grows with every change to the alert (see `alertVersion`): of two reads, keep the higher. */
  version: number
}

export interface TransitionView {
  from: AlertState | null
  to: AlertState
  at: string
  actor: string
  note: string | null
}

export interface AlertFilter {
  state?: AlertState
  kind?: AlertKind
  zone?: string
  deviceId?: string
  from?: Date
  to?: Date
  limit: number
  /** Where the page starts: after this alert, in the list's order (db/keyset-paging.ts). */
  after?: Position
}

const SELECT_ALERTS = `
  SELECT a.id, a.device_id, d.name AS device_name, a.kind, a.state, a.zone, d.lat, d.lon, a.test,
         a.opened_at, a.acknowledged_at, a.dispatched_at, a.resolved_at, a.cancelled_at, a.outcome,
         a.press_count, a.last_press_at, a.escalation_level, a.escalated_at, ${positionOf('a.opened_at')}
  FROM alerts a LEFT JOIN devices d ON d.id = a.device_id`

interface AlertRow {
  id: string
  device_id: string
  device_name: string | null
  kind: AlertKind
  state: AlertState
  zone: string
  lat: number | null
  lon: number | null
  test: boolean
  opened_at: Date
  acknowledged_at: Date | null
  dispatched_at: Date | null
  resolved_at: Date | null
  cancelled_at: Date | null
  outcome: Outcome | null
  press_count: number
  last_press_at: Date
  escalation_level: number
  escalated_at: Date | null
  position: string | null
}

export class AlertStore {
  constructor (private readonly db: Queryable) {}

  /** The newest first; alerts opened at the same instant by id, so pages neither skip nor repeat one. */
  async list (filter: AlertFilter): Promise<Paged<AlertView>> {
    const rows = await this.db.query<AlertRow>(`${SELECT_ALERTS}
      WHERE ($1::text IS NULL OR a.state = $1) AND ($2::text IS NULL OR a.kind = $2)
        AND ($3::text IS NULL OR a.zone = $3) AND ($4::text IS NULL OR a.device_id = $4)
        AND ($5::timestamptz IS NULL OR a.opened_at >= $5) AND ($6::timestamptz IS NULL OR a.opened_at < $6)
        AND ${afterPosition({ time: 'a.opened_at', id: 'a.id' }, { time: '$8', id: '$9' })}
      ORDER BY a.opened_at DESC, a.id DESC LIMIT $7`,
    [filter.state ?? null, filter.kind ?? null, filter.zone ?? null, filter.deviceId ?? null,
      filter.from ?? null, filter.to ?? null, filter.limit, filter.after?.time ?? null, filter.after?.id ?? null])
    return paged(rows, filter.limit, (row) => row.id, toView)
  }

  async get (id: string): Promise<AlertView & { transitions: TransitionView[] }> {
    const rows = await this.db.query<AlertRow>(`${SELECT_ALERTS} WHERE a.id = $1`, [id])
    if (!rows[0]) throw notFound(`alert ${id}`)
    const transitions = await this.db.query<{ from_state: AlertState | null, to_state: AlertState, at: Date, actor: string, note: string | null }>(
      'SELECT from_state, to_state, at, actor, note FROM alert_transitions WHERE alert_id = $1 ORDER BY id', [id])
    return {
      ...toView(rows[0]),
      transitions: transitions.map((t) => ({ from: t.from_state, to: t.to_state, at: t.at.toISOString(), actor: t.actor, note: t.note }))
    }
  }
}

const iso = (d: Date | null) => d?.toISOString() ?? null

function toView (row: AlertRow): AlertView {
  const view: Omit<AlertView, 'version'> = {
    id: row.id,
    deviceId: row.device_id,
    deviceName: row.device_name,
    kind: row.kind,
    state: row.state,
    zone: row.zone,
    lat: row.lat,
    lon: row.lon,
    test: row.test,
    openedAt: row.opened_at.toISOString(),
    acknowledgedAt: iso(row.acknowledged_at),
    dispatchedAt: iso(row.dispatched_at),
    resolvedAt: iso(row.resolved_at),
    cancelledAt: iso(row.cancelled_at),
    outcome: row.outcome,
    pressCount: row.press_count,
    lastPressAt: row.last_press_at.toISOString(),
    escalationLevel: row.escalation_level,
    escalatedAt: iso(row.escalated_at)
  }
  return { ...view, version: alertVersion(view) }
}
