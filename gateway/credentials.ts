/**
 * Device credentials on the gateway side: a cache of what the server knows (kind, zone,
 * secret hash, revoked), kept in memory and on disk, so known devices still connect while
 * the server is unreachable or the gateway restarts without it. Refreshed periodically, so a
 * revoked device is refused within one refresh interval.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'
import type { DeviceCredential } from '../protocol/index.js'
import { verifySecret } from '../protocol/secret-hash.js'
import type { ServerClient } from './server-client.js'
import { getMeta, setMeta, type StateDb } from './state-db.js'

export type CheckResult =
  | { ok: true, device: DeviceCredential }
  | { ok: false, reason: 'unknown' | 'revoked' | 'bad_secret' | 'unavailable' }

export class CredentialCache {
  private readonly devices = new Map<string, DeviceCredential>()
  /** sha256 of secrets already verified against a given hash: reconnects skip the slow scrypt. */
  private readonly verified = new Map<string, { secretHash: string, digest: Buffer }>()
  private timer?: NodeJS.Timeout
  private lastSync?: string

  constructor (
    private readonly db: StateDb,
    private readonly server: ServerClient,
    private readonly refreshMs: number,
    private readonly log: Logger,
    /** Called with ids that were revoked, so their live sessions can be closed. */
    private readonly onRevoked: (ids: string[]) => void = () => {}
  ) {
    for (const row of db.prepare('SELECT body FROM credentials').all() as Array<{ body: string }>) {
      const device = JSON.parse(row.body) as DeviceCredential
      this.devices.set(device.id, device)
    }
    this.lastSync = getMeta(db, 'credentials_synced_at')
  }

  async start (): Promise<void> {
    await this.refresh().catch((err) => this.log.warn({ err: err.message }, 'credential sync failed; using the cached credentials'))
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.log.warn({ err: err.message }, 'credential sync failed; using the cached credentials'))
    }, this.refreshMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** Pulls what changed since the last sync (everything the first time). */
  async refresh (): Promise<void> {
    const { asOf, devices } = await this.server.credentials(this.lastSync ? { changedSince: this.lastSync } : {})
    this.store(devices)
    // Overlap the next window a little: a change committed while we read must not fall between.
    this.lastSync = new Date(Date.parse(asOf) - 5_000).toISOString()
    setMeta(this.db, 'credentials_synced_at', this.lastSync)
  }

  async check (deviceId: string, secret: string): Promise<CheckResult> {
    const known = await this.lookup(deviceId)
    if (!known.ok) return known
    const { device } = known
    const digest = createHash('sha256').update(secret).digest()
    const verified = this.verified.get(deviceId)
    if (verified && verified.secretHash === device.secretHash && timingSafeEqual(verified.digest, digest)) return { ok: true, device }
    if (!await verifySecret(secret, device.secretHash)) return { ok: false, reason: 'bad_secret' }
    this.verified.set(deviceId, { secretHash: device.secretHash, digest })
    return { ok: true, device }
  }

  /** A registered, unrevoked device (asking the server for one provisioned since the last sync). */
  async lookup (deviceId: string): Promise<CheckResult> {
    let device = this.devices.get(deviceId)
    if (!device) {
      // A device provisioned since the last sync: ask for it now.
      try {
        const { devices } = await this.server.credentials({ id: deviceId })
        this.store(devices)
      } catch (err) {
        this.log.warn({ deviceId, err: (err as Error).message }, 'cannot look up an unknown device: server unreachable')
        return { ok: false, reason: 'unavailable' }
      }
      device = this.devices.get(deviceId)
      if (!device) return { ok: false, reason: 'unknown' }
    }
    if (device.revoked) return { ok: false, reason: 'revoked' }
    return { ok: true, device }
  }

  get (deviceId: string): DeviceCredential | undefined {
    return this.devices.get(deviceId)
  }

  private store (devices: DeviceCredential[]): void {
    if (devices.length === 0) return
    const upsert = this.db.prepare('INSERT INTO credentials (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body')
    const revoked: string[] = []
    this.db.transaction(() => {
      for (const device of devices) {
        const before = this.devices.get(device.id)
        if (device.revoked && !before?.revoked) revoked.push(device.id)
        if (before && before.secretHash !== device.secretHash) this.verified.delete(device.id)
        this.devices.set(device.id, device)
        upsert.run(device.id, JSON.stringify(device))
      }
    })()
    if (revoked.length > 0) this.onRevoked(revoked)
  }
}
