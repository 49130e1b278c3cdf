/**
 * Device credentials on the gateway side: a cache of what the server knows (kind, zone,
 * secret hash, revoked), kept in memory and on disk, so known devices still connect while
 * the server is unreachable or the gateway restarts without it. Refreshed periodically, so a
 * revoked device is refused within one refresh interval, and a device whose zone or silent flag
 * an admin corrected is let go to reconnect under them.
 *
 * The server is asked about one device only when the cache cannot answer: an id it has never
 * seen (a device provisioned since the last refresh), or a known device whose secret does not
 * match (its secret may have been rotated since). Both are bounded, so CONNECT floods with
 * made-up ids or wrong passwords cannot become a flood of requests to the server: an id the
 * server did not know is not asked about again for a while, a device's secret is re-checked at
 * most once per RECHECK_MS, and at most MAX_LOOKUPS questions are in flight at once.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'
import type { DeviceCredential } from '../protocol/index.js'
import { isSlowHash, verifySecret } from '../protocol/secret-hash.js'
import type { ServerClient } from './server-client.js'
import { getMeta, metaWrite, type StateDb } from './state-db.js'
import type { StateWriter, Write } from './state-writer.js'

export type CheckResult =
  | { ok: true, device: DeviceCredential }
  | { ok: false, reason: 'unknown' | 'revoked' | 'bad_secret' | 'unavailable' }

/** Devices whose live sessions may no longer hold, by why. */
export interface CredentialChanges {
  revoked: string[]
  rotated: string[]
  /** Zone or silent flag changed (PATCH /v1/devices/{id}): sessions opened before hold the old ones. */
  reconfigured: string[]
}

/** How long an id the server did not know is refused without asking again (a refresh clears it). */
const UNKNOWN_FOR_MS = 30_000
/** Ids remembered (as unknown, or as rechecked) at most: a flood of ids must not grow memory. */
const MAX_REMEMBERED = 10_000
/** A known device whose secret did not match is re-fetched at most this often. */
const RECHECK_MS = 10_000
const MAX_LOOKUPS = 16
/**
 * Slow secret checks (scrypt: 16 MiB and tens of milliseconds each, on libuv's four threads;
 * only secrets an older version hashed) run at once, and wait at most: beyond, a CONNECT hears
 * "server unavailable" and tries again. Each wrong password for such a device not yet verified
 * here costs one: a flood of them (a device id is printed on its pole) must not hold every
 * other device's sign-in behind it.
 */
const SECRET_CHECKS_AT_ONCE = 2
const SECRET_CHECKS_WAITING = 32
// And one at a time per device (below): guesses at one id cannot fill the line for the others.
const UPSERT = 'INSERT INTO credentials (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body'
const VERIFIED_UPSERT = 'INSERT INTO verified_secrets (id, secret_hash, digest) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, digest = excluded.digest'

export class CredentialCache {
  private readonly devices = new Map<string, DeviceCredential>()
  /**
   * sha256 of secrets already verified against a given scrypt hash (one an older version made):
   * a reconnect skips the slow scrypt,
   * and so does a wrong password (a digest that differs is proof enough). Kept on disk, so a
   * restarted gateway does not owe every device a scrypt again, flood or not. (A digest of a
   * 192-bit random secret gives nothing away: the secret cannot be found from it.)
   */
  private readonly verified = new Map<string, { secretHash: string, digest: Buffer }>()
  private readonly secretChecks = new Slots(SECRET_CHECKS_AT_ONCE, SECRET_CHECKS_WAITING)
  /** Devices with a slow check under way: one at a time each, so a flood of one id holds one slot. */
  private readonly checking = new Set<string>()
  private timer?: NodeJS.Timeout
  private lastSync?: string
  /** Ids the server said it does not know → until when we take its word for it. */
  private readonly unknownUntil = new Map<string, number>()
  /** One question per device at a time, shared by concurrent CONNECTs. */
  private readonly fetching = new Map<string, Promise<void>>()
  private readonly recheckedAt = new Map<string, number>()

  /** Reads the cache saved on disk; later changes are saved through `writer`. */
  constructor (
    db: StateDb,
    private readonly writer: StateWriter,
    private readonly server: ServerClient,
    private readonly refreshMs: number,
    private readonly log: Logger,
    /**
     * Called with ids that were revoked, ids whose secret changed (rotated: the old one may be
     * in a thief's hands) and ids whose zone or silent flag changed (an admin's correction: the
     * live sessions hold the old ones for the announce ACL and the gateway's own acks), so the
     * live sessions that no longer hold can be closed.
     */
    private readonly onChanged: (change: CredentialChanges) => void = () => {},
    /** Counts each question to the server about one device, by outcome. */
    private readonly onLookup: (result: 'found' | 'unknown' | 'failed') => void = () => {},
    /** Counts each slow secret check, by outcome. */
    private readonly onSecretCheck: (result: 'match' | 'mismatch' | 'busy') => void = () => {},
    private readonly now: () => number = Date.now
  ) {
    for (const row of db.prepare('SELECT body FROM credentials').all() as Array<{ body: string }>) {
      const device = JSON.parse(row.body) as DeviceCredential
      this.devices.set(device.id, device)
    }
    for (const row of db.prepare('SELECT id, secret_hash, digest FROM verified_secrets').all() as Array<{ id: string, secret_hash: string, digest: Buffer }>) {
      this.verified.set(row.id, { secretHash: row.secret_hash, digest: row.digest })
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
    // Overlap the next window a little: a change committed while we read must not fall between.
    this.lastSync = new Date(Date.parse(asOf) - 5_000).toISOString()
    // One transaction: the mark never moves past changes (a revocation) that were not saved.
    this.store(devices, metaWrite('credentials_synced_at', this.lastSync))
  }

  async check (deviceId: string, secret: string): Promise<CheckResult> {
    const known = await this.lookup(deviceId)
    if (!known.ok) return known
    const match = await this.matches(known.device, secret)
    if (match === 'busy') return { ok: false, reason: 'unavailable' }
    if (match) return known
    // The secret may have been rotated since the last refresh: ask once, rather than refuse the
    // device until the next one. At most once per RECHECK_MS per device, so a wrong password
    // repeated does not become a stream of requests.
    const last = this.recheckedAt.get(deviceId)
    if (last !== undefined && this.now() - last < RECHECK_MS) return { ok: false, reason: 'bad_secret' }
    if (this.lookupsFull(deviceId)) return { ok: false, reason: 'bad_secret' }
    remember(this.recheckedAt, deviceId, this.now())
    try {
      await this.fetch(deviceId)
    } catch {
      return { ok: false, reason: 'bad_secret' }
    }
    const fresh = this.devices.get(deviceId)
    if (!fresh || fresh.secretHash === known.device.secretHash) return { ok: false, reason: 'bad_secret' }
    if (fresh.revoked) return { ok: false, reason: 'revoked' }
    const freshMatch = await this.matches(fresh, secret)
    if (freshMatch === 'busy') return { ok: false, reason: 'unavailable' }
    return freshMatch ? { ok: true, device: fresh } : { ok: false, reason: 'bad_secret' }
  }

  /** A registered, unrevoked device (asking the server for one provisioned since the last sync). */
  async lookup (deviceId: string): Promise<CheckResult> {
    let device = this.devices.get(deviceId)
    if (!device) {
      const until = this.unknownUntil.get(deviceId)
      if (until !== undefined && until > this.now()) return { ok: false, reason: 'unknown' }
      // Many different unknown ids at once is a flood, not an installer: they can try again later.
      if (this.lookupsFull(deviceId)) return { ok: false, reason: 'unavailable' }
      try {
        await this.fetch(deviceId)
      } catch (err) {
        this.log.warn({ deviceId, err: (err as Error).message }, 'cannot look up an unknown device: server unreachable')
        return { ok: false, reason: 'unavailable' }
      }
      device = this.devices.get(deviceId)
      if (!device) {
        remember(this.unknownUntil, deviceId, this.now() + UNKNOWN_FOR_MS)
        return { ok: false, reason: 'unknown' }
      }
    }
    if (device.revoked) return { ok: false, reason: 'revoked' }
    return { ok: true, device }
  }

  /** MAX_LOOKUPS questions about other devices are in flight (joining one already asked is free). */
  private lookupsFull (deviceId: string): boolean {
    return this.fetching.size >= MAX_LOOKUPS && !this.fetching.has(deviceId)
  }

  /** Asks the server about one device; concurrent callers share the question. */
  private fetch (deviceId: string): Promise<void> {
    let pending = this.fetching.get(deviceId)
    if (!pending) {
      pending = this.server.credentials({ id: deviceId }).then(({ devices }) => {
        this.onLookup(devices.some((d) => d.id === deviceId) ? 'found' : 'unknown')
        this.store(devices)
      }, (err: Error) => {
        this.onLookup('failed')
        throw err
      }).finally(() => this.fetching.delete(deviceId))
      this.fetching.set(deviceId, pending)
    }
    return pending
  }

  /**
   * Whether `secret` is the device's. A secret hashed the fast way (protocol/secret-hash.ts) is
   * checked at once, every time. One stored as scrypt (by an older version) costs a scrypt the
   * first time, a digest compare after that (either way); `busy` when too many slow checks are
   * waiting already.
   */
  private async matches (device: DeviceCredential, secret: string): Promise<boolean | 'busy'> {
    if (!isSlowHash(device.secretHash)) return await verifySecret(secret, device.secretHash)
    const digest = createHash('sha256').update(secret).digest()
    const verified = this.verified.get(device.id)
    if (verified && verified.secretHash === device.secretHash) return timingSafeEqual(verified.digest, digest)
    let match: boolean | undefined
    if (!this.checking.has(device.id)) {
      this.checking.add(device.id)
      try {
        match = await this.secretChecks.run(() => verifySecret(secret, device.secretHash))
      } finally {
        this.checking.delete(device.id)
      }
    }
    this.onSecretCheck(match === undefined ? 'busy' : match ? 'match' : 'mismatch')
    if (match === undefined) return 'busy'
    if (!match) return false
    this.verified.set(device.id, { secretHash: device.secretHash, digest })
    this.writer.write({ sql: VERIFIED_UPSERT, params: [device.id, device.secretHash, digest] })
    return true
  }

  get (deviceId: string): DeviceCredential | undefined {
    return this.devices.get(deviceId)
  }

  private store (devices: DeviceCredential[], ...alsoWrite: Write[]): void {
    if (devices.length === 0) return this.writer.write(...alsoWrite)
    const revoked: string[] = []
    const rotated: string[] = []
    const reconfigured: string[] = []
    for (const device of devices) {
      const before = this.devices.get(device.id)
      if (device.revoked && !before?.revoked) revoked.push(device.id)
      if (before && before.secretHash !== device.secretHash) {
        this.verified.delete(device.id)
        if (!device.revoked) rotated.push(device.id)
      }
      if (before && !device.revoked && (before.zone !== device.zone || before.silent !== device.silent)) reconfigured.push(device.id)
      this.unknownUntil.delete(device.id)
      this.devices.set(device.id, device)
    }
    this.writer.write(...devices.map((device) => ({ sql: UPSERT, params: [device.id, JSON.stringify(device)] })), ...alsoWrite)
    if (revoked.length > 0 || rotated.length > 0 || reconfigured.length > 0) this.onChanged({ revoked, rotated, reconfigured })
  }
}

/** Sets `key`, forgetting the oldest entry once the map holds more than MAX_REMEMBERED. */
function remember<V> (map: Map<string, V>, key: string, value: V): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value!)
}

/** At most `max` tasks at once, and `waiting` more in line; beyond that, none. */
class Slots {
  private running = 0
  private readonly queue: Array<() => void> = []

  constructor (private readonly max: number, private readonly waiting: number) {}

  /** `task`'s result once a slot was free; undefined at once when the line is full. */
  async run<T> (task: () => Promise<T>): Promise<T | undefined> {
    if (this.running < this.max) this.running++
    else if (this.queue.length < this.waiting) await new Promise<void>((resolve) => this.queue.push(resolve))
    else return undefined
    try {
      return await task()
    } finally {
      // The slot goes to the next in line, or is given back.
      const next = this.queue.shift()
      if (next) next()
      else this.running--
    }
  }
}
