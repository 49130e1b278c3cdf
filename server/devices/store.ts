/** The device registry: provisioning, lookup, correction, secret rotation and revocation. */
import type { Queryable } from '../db/database.js'
import type { DeviceCredential } from '../../protocol/index.js'
import { hashDeviceSecret, hashPin, newDeviceSecret } from '../../protocol/secret-hash.js'
import { conflict, HttpError, notFound } from '../plugins/errors.js'
import { isoTime, isoTimeOrNull, timeMs } from '../db/iso-times.js'

export const DEVICE_KINDS = ['button', 'kiosk', 'counter'] as const
export type DeviceKind = typeof DEVICE_KINDS[number]

export interface NewDevice {
  id: string
  kind: DeviceKind
  name: string
  zone: string
  lat: number
  lon: number
  silent?: boolean
  pin?: string
}

/** A correction of a device's settings: only what is given changes; `pin: null` removes the PIN. */
export interface DeviceChanges {
  name?: string
  zone?: string
  lat?: number
  lon?: number
  silent?: boolean
  pin?: string | null
}

/** A device as the API shows it: never its secret or PIN hash. */
export interface DeviceView {
  id: string
  kind: DeviceKind
  name: string
  zone: string
  lat: number | null
  lon: number | null
  silent: boolean
  hasPin: boolean
  createdAt: string
  revokedAt: string | null
  lastSeenAt: string | null
  online: boolean
  battery: number | null
  rssi: number | null
  fw: string | null
}

interface DeviceRow {
  id: string
  kind: DeviceKind
  name: string
  zone: string
  lat: number | null
  lon: number | null
  silent: boolean
  has_pin: boolean
  created_at: Date
  revoked_at: Date | null
  last_seen_at: Date | null
  /** When the server last heard it, by the database's clock (last_seen_at is its gateway's). */
  heard_at: Date | null
  battery: number | null
  rssi: number | null
  fw: string | null
  online: boolean | null
  presence_at: Date | null
}

const VIEW_COLUMNS = `id, kind, name, zone, lat, lon, silent, pin_hash IS NOT NULL AS has_pin, created_at,
  revoked_at, last_seen_at, heard_at, battery, rssi, fw, online, presence_at`

/** Counter devices are silent alarms unless provisioning says otherwise. */
const silentByDefault = (kind: DeviceKind) => kind === 'counter'

export class DeviceStore {
  /** A device not heard from for this long is shown offline (supervision refines this per kind). */
  constructor (private readonly db: Queryable, private readonly onlineWindowMs = 90_000) {}

  async create (device: NewDevice): Promise<{ device: DeviceView, secret: string }> {
    const secret = newDeviceSecret()
    const secretHash = hashDeviceSecret(secret)
    const pinHash = device.pin ? await hashPin(device.pin) : null
    const rows = await this.db.query<DeviceRow>(
      `INSERT INTO devices (id, kind, name, zone, lat, lon, silent, secret_hash, pin_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO NOTHING
       RETURNING ${VIEW_COLUMNS}`,
      [device.id, device.kind, device.name, device.zone, device.lat, device.lon,
        device.silent ?? silentByDefault(device.kind), secretHash, pinHash])
    const row = rows[0]
    if (!row) throw await this.taken(device.id)
    return { device: this.view(row), secret }
  }

  async list (filter: { zone?: string, kind?: string, limit: number, after?: string }): Promise<DeviceView[]> {
    const rows = await this.db.query<DeviceRow>(
      `SELECT ${VIEW_COLUMNS} FROM devices
       WHERE ($1::text IS NULL OR zone = $1) AND ($2::text IS NULL OR kind = $2) AND revoked_at IS NULL
         AND ($4::text IS NULL OR id > $4)
       ORDER BY id LIMIT $3`, [filter.zone ?? null, filter.kind ?? null, filter.limit, filter.after ?? null])
    return rows.map((row) => this.view(row))
  }

  async get (id: string): Promise<DeviceView> {
    const rows = await this.db.query<DeviceRow>(`SELECT ${VIEW_COLUMNS} FROM devices WHERE id = $1`, [id])
    if (!rows[0]) throw notFound(`device ${id}`)
    return this.view(rows[0])
  }

  /**
   * Changes a device's settings (never its id or kind) and says which ones differ from before.
   * `updated_at` moves, so every gateway's next credential refresh takes the new zone and silent
   * flag (and closes the connections made under the old ones). Alerts already open keep their
   * zone: they happened there. A revoked device is not changed (it can never connect again).
   */
  async update (id: string, changes: DeviceChanges): Promise<{ device: DeviceView, changed: string[] }> {
    const pinHash = typeof changes.pin === 'string' ? await hashPin(changes.pin) : null
    // The row as it was comes back beside the new one (the subquery locks and reads it first).
    const rows = await this.db.query<DeviceRow & { before: { name: string, zone: string, lat: number | null, lon: number | null, silent: boolean, has_pin: boolean } }>(
      `WITH updated AS (
         UPDATE devices d SET name = COALESCE($2, d.name), zone = COALESCE($3, d.zone), lat = COALESCE($4, d.lat),
           lon = COALESCE($5, d.lon), silent = COALESCE($6, d.silent),
           pin_hash = CASE WHEN $7::boolean THEN $8 ELSE d.pin_hash END, updated_at = now()
         FROM (SELECT id, name, zone, lat, lon, silent, pin_hash IS NOT NULL AS has_pin FROM devices
               WHERE id = $1 AND revoked_at IS NULL FOR UPDATE) old
         WHERE d.id = old.id
         RETURNING d.*, json_build_object('name', old.name, 'zone', old.zone, 'lat', old.lat, 'lon', old.lon,
           'silent', old.silent, 'has_pin', old.has_pin) AS before
       )
       SELECT ${VIEW_COLUMNS}, before FROM updated`,
      [id, changes.name ?? null, changes.zone ?? null, changes.lat ?? null, changes.lon ?? null, changes.silent ?? null,
        changes.pin !== undefined, pinHash])
    const row = rows[0]
    if (!row) throw await this.notChangeable(id)
    const { before } = row
    const changed: string[] = (['name', 'zone', 'lat', 'lon', 'silent'] as const).filter((field) => changes[field] !== undefined && changes[field] !== before[field])
    // A PIN's hash is salted: a new one is a change whatever its digits; removing none is not.
    if (typeof changes.pin === 'string' || (changes.pin === null && before.has_pin)) changed.push('pin')
    return { device: this.view(row), changed }
  }

  /**
   * Why an id cannot be provisioned: it is in use, or was revoked, and a revoked id is never
   * given again (its events and alerts keep naming the device that had it).
   */
  private async taken (id: string): Promise<HttpError> {
    const revokedAt = await this.revokedAt(id)
    return revokedAt
      ? conflict(`device ${id} was revoked at ${isoTime(revokedAt)}: a revoked id is not given again (provision the device under a new id)`)
      : conflict(`device ${id} already exists`)
  }

  /** Why a device cannot be changed: never provisioned, or revoked (say which). */
  private async notChangeable (id: string): Promise<HttpError> {
    const revokedAt = await this.revokedAt(id)
    if (!revokedAt) return notFound(`device ${id}`)
    return new HttpError(404, 'DEVICE_REVOKED', `device ${id} was revoked at ${isoTime(revokedAt)}: a revoked device cannot be changed (provision a new one under a new id)`)
  }

  /** When the device was revoked; null or undefined when it is not, or was never provisioned. */
  private async revokedAt (id: string): Promise<Date | null | undefined> {
    const rows = await this.db.query<{ revoked_at: Date | null }>('SELECT revoked_at FROM devices WHERE id = $1', [id])
    return rows[0]?.revoked_at
  }

  async rotateSecret (id: string): Promise<{ device: DeviceView, secret: string }> {
    const secret = newDeviceSecret()
    const rows = await this.db.query<DeviceRow>(
      `UPDATE devices SET secret_hash = $2, updated_at = now() WHERE id = $1 AND revoked_at IS NULL
       RETURNING ${VIEW_COLUMNS}`, [id, hashDeviceSecret(secret)])
    if (!rows[0]) throw await this.notChangeable(id)
    return { device: this.view(rows[0]), secret }
  }

  /**
   * Revokes a device. Idempotent, so an admin's script may retry after a timeout: a device
   * revoked already keeps its first revocation's time (and `updated_at`, so no gateway reloads
   * it). Only an id never provisioned is not found.
   */
  async revoke (id: string): Promise<{ alreadyRevoked: boolean }> {
    // One statement: a revocation racing this one is seen as "already", never as "not found".
    const rows = await this.db.query<{ newly: boolean }>(
      `WITH revoked AS (
         UPDATE devices SET revoked_at = now(), updated_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM revoked) AS newly FROM devices WHERE id = $1`, [id])
    if (!rows[0]) throw notFound(`device ${id}`)
    return { alreadyRevoked: !rows[0].newly }
  }

  /** What gateways need to authenticate devices themselves (and keep doing so while we are away). */
  async credentials (filter: { id?: string, changedSince?: Date }): Promise<DeviceCredential[]> {
    return this.db.query<DeviceCredential>(
      `SELECT id, kind, zone, silent, secret_hash AS "secretHash", revoked_at IS NOT NULL AS revoked
       FROM devices WHERE ($1::text IS NULL OR id = $1) AND ($2::timestamptz IS NULL OR updated_at >= $2)
       ORDER BY id`, [filter.id ?? null, filter.changedSince ?? null])
  }

  /**
   * What the gateway last reported (connected, or offline by last will / missed heartbeats)
   * wins, unless the device was heard from after that report; with no report, recent traffic.
   */
  private isOnline (row: DeviceRow): boolean {
    // By our clock, not the gateway's: one running slow made every device behind it look offline.
    const heard = row.heard_at ?? row.last_seen_at
    const heardRecently = heard !== null && Date.now() - timeMs(heard) < this.onlineWindowMs
    if (row.online === null || row.presence_at === null) return heardRecently
    if (row.online) return true
    return heardRecently && row.last_seen_at !== null && row.last_seen_at > row.presence_at
  }

  private view (row: DeviceRow): DeviceView {
    return {
      id: row.id,
      kind: row.kind,
      name: row.name,
      zone: row.zone,
      lat: row.lat,
      lon: row.lon,
      silent: row.silent,
      hasPin: row.has_pin,
      createdAt: isoTime(row.created_at),
      revokedAt: isoTimeOrNull(row.revoked_at),
      lastSeenAt: isoTimeOrNull(row.last_seen_at),
      online: row.revoked_at === null && this.isOnline(row),
      battery: row.battery,
      rssi: row.rssi,
      fw: row.fw
    }
  }
}
