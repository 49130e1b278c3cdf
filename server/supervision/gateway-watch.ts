/**
 * Path supervision: the server watches its gateways as the gateways watch their devices.
 *
 * A gateway reports its devices' outages itself (supervisor.ts), but nobody reports the
 * gateway's own: a host that burns, a cut link to the server, a process that stops calling.
 * Every device behind it would go silent unreported, its presses lost. So every request a
 * gateway makes naming itself (`X-Gateway-Id`) is a sign of life, kept in `gateways` on the
 * database's clock (every server instance behind a load balancer sees the same; at most one
 * write per gateway every few seconds). A gateway not heard from for GATEWAY_LOST_AFTER is
 * lost: each of its devices that is not heard from either, and that it had not already
 * reported offline, gets a `device_offline` alert opened by `system:gateway-watch` with the
 * reason, once per outage. Such an alert is resolved when the device itself is heard again (a
 * new event stored, whichever gateway brought it, but not a late one: see `heard_at` in
 * ingest/events.ts), or by the gateway's own `online` report; a device that never comes back
 * keeps it. Instances take turns, and the watch works a slice at a time, giving way to ingest
 * batches: it never holds up a press.
 *
 * No false alarm from the watch's own troubles: a server that starts, or whose passes stalled
 * (the process paused, the database away) or whose database clock jumped, gives every gateway
 * a full interval from then before counting it lost. Gateways that never name themselves (older
 * ones) are not watched. Two processes under one id (twins) count as lost when either stops
 * calling: gateway-instances.ts.
 */
import { performance } from 'node:perf_hooks'
import { Gauge } from 'prom-client'
import type { FastifyBaseLogger } from 'fastify'
import type { Database, Queryable } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { ServerMetrics } from '../metrics.js'
import type { AlertLifecycle, LockedAlert } from '../alerts/lifecycle.js'
import { raiseAlerts, type RaisedAlert } from '../ingest/raise-alert.js'
import type { GatewayHealth } from '../../protocol/index.js'
import { ADVISORY_LOCKS } from '../db/advisory-locks.js'
import { GatewayInstances } from './gateway-instances.js'
import { PassRunner } from '../escalation/pass-runner.js'

/** Who opens and resolves the alerts of a lost gateway, in the audit trail. */
export const GATEWAY_WATCH_ACTOR = 'system:gateway-watch'

/** A gateway as the operators see it (`GET /v1/gateways`). */
export interface GatewayStatus {
  id: string
  lastContactAt: string
  /** Not heard from for GATEWAY_LOST_AFTER. */
  silent: boolean
  /**
   * Silent with devices behind it (a silent one without is retired, or has lost them all to
   * others); for a shared id, one of its processes is silent.
   */
  lost: boolean
  /** Registered devices it forwards for. */
  devices: number
  /** Two processes called under this id over the same stretch of time, within a day (see migration 8). */
  sharedId: boolean
  /** Its outbox as it last reported it, when it did. */
  outbox: { depth: number, full: boolean, oldestAgeMs: number | null, reportedAt: string } | null
}

export interface GatewayWatchOptions {
  /** A gateway not heard from for this long is lost (GATEWAY_LOST_AFTER). */
  lostAfterMs: number
  /** How often to look; default a quarter of `lostAfterMs`, at most 5 s. */
  checkEveryMs?: number
  /** A gap this long between passes is a stall of the watch itself; default half of `lostAfterMs`. */
  stallAfterMs?: number
  /**
   * A pass not done within this long is abandoned, and the next one runs (default 30 s: the
   * next pass then starts short of the gap the watch takes for a stall of its own, 45 s by
   * default). A pass is slices of milliseconds each, and a wide outage's thousands of alerts
   * take seconds; one that takes this long waits on a dead connection. An abandoned pass stops
   * at its next slice, and the next pass takes up the rest.
   */
  passDeadlineMs?: number
}

const ACTIVE = "('open', 'acknowledged', 'dispatched')"
/**
 * Alerts raised or resolved per transaction: a wide outage's thousands are taken a slice at a
 * time, so an ingest batch that needs one of them never waits long behind the watch.
 */
const SLICE = 200
const MAX_SLICES = 100

export class GatewayWatch {
  /** When each gateway's contact was last written (monotonic ms), to write it only now and then. */
  private readonly written = new Map<string, number>()
  /** The process (instance id) whose call this instance wrote last, per gateway. */
  private readonly writtenInstance = new Map<string, string>()
  private readonly instances: GatewayInstances
  /** Lost at the last pass (this instance's view, for the log and the gauge). */
  private lost = new Set<string>()
  /** Silence counts from here at the earliest (database time, ms): this start, or a stall. */
  private floorMs = 0
  private lastPass?: { monotonicMs: number, dbMs: number }
  private timer?: NodeJS.Timeout
  private readonly passes: PassRunner<void>

  constructor (
    private readonly db: Database,
    private readonly bus: Bus,
    private readonly lifecycle: AlertLifecycle,
    private readonly metrics: ServerMetrics,
    private readonly options: GatewayWatchOptions,
    private readonly log?: FastifyBaseLogger
  ) {
    this.instances = new GatewayInstances(db, options.lostAfterMs, log)
    this.passes = new PassRunner({ loop: 'gateway_watch', deadlineMs: options.passDeadlineMs ?? 30_000, fallback: undefined, failedMessage: 'gateway watch failed' }, metrics, log)
    this.registerGauges()
  }

  /**
   * A gateway called (authenticated): it is alive and can reach us. With a batch comes the
   * state of its outbox (how much waits to be forwarded, whether it is shedding routine events),
   * kept with the call. Written at most every few seconds per gateway, and whenever another
   * process calls under its id than the one this instance wrote last (so two processes sharing
   * an id are seen even when one of them calls far less than the other).
   */
  async heard (gatewayId: string, health?: GatewayHealth, instanceId?: string): Promise<void> {
    const now = performance.now()
    const sameInstance = instanceId === undefined || this.writtenInstance.get(gatewayId) === instanceId
    if (sameInstance && now - (this.written.get(gatewayId) ?? -Infinity) < this.writeEveryMs()) return
    this.written.set(gatewayId, now)
    if (instanceId !== undefined) this.writtenInstance.set(gatewayId, instanceId)
    try {
      // A call without a report keeps the last report.
      await this.db.query(`INSERT INTO gateways (id, last_contact_at, outbox_depth, outbox_full, outbox_oldest_age_ms, reported_at)
        VALUES ($1, now(), $2, $3, $4, CASE WHEN $5 THEN now() END)
        ON CONFLICT (id) DO UPDATE SET last_contact_at = EXCLUDED.last_contact_at,
          outbox_depth = CASE WHEN $5 THEN EXCLUDED.outbox_depth ELSE gateways.outbox_depth END,
          outbox_full = CASE WHEN $5 THEN EXCLUDED.outbox_full ELSE gateways.outbox_full END,
          outbox_oldest_age_ms = CASE WHEN $5 THEN EXCLUDED.outbox_oldest_age_ms ELSE gateways.outbox_oldest_age_ms END,
          reported_at = COALESCE(EXCLUDED.reported_at, gateways.reported_at)`,
      [gatewayId, health?.outboxDepth ?? null, health?.outboxFull ?? null, health?.outboxOldestAgeMs ?? null, health !== undefined])
      if (instanceId !== undefined) await this.instances.heard(gatewayId, instanceId)
    } catch (err) {
      // Written at the next call; a request is never failed for it.
      this.written.delete(gatewayId)
      this.log?.warn({ err, gateway: gatewayId }, 'gateway watch: contact not recorded')
    }
  }

  /**
   * Per-gateway gauges and the count of lost gateways, read from `list()` at scrape time (one
   * read for all three: prom-client collects them together), so every instance says the same
   * as the API and the console.
   */
  private registerGauges (): void {
    let reading: Promise<GatewayStatus[]> | undefined
    const statuses = () => (reading ??= this.list().finally(() => { reading = undefined }))
    const registers = [this.metrics.registry]
    void new Gauge({
      name: 'sos_gateways_lost', help: 'Gateways with devices not heard from for GATEWAY_LOST_AFTER (their silent devices are reported offline)',
      registers,
      async collect () { this.set((await statuses()).filter((g) => g.lost).length) }
    })
    void new Gauge({
      name: 'sos_gateways_sharing_an_id', help: 'Gateway ids two processes called under together within a day (the id counts as lost whenever either stops calling)',
      registers,
      async collect () { this.set((await statuses()).filter((g) => g.sharedId).length) }
    })
    const perGateway = (name: string, help: string, value: (g: GatewayStatus) => number | undefined) => new Gauge({
      name, help, labelNames: ['gateway'] as const, registers,
      async collect () {
        const gateways = await statuses()
        this.reset()
        for (const g of gateways) {
          const v = value(g)
          if (v !== undefined) this.set({ gateway: g.id }, v)
        }
      }
    })
    perGateway('sos_gateway_seconds_since_contact', 'Seconds since each gateway last called the server',
      (g) => (Date.now() - Date.parse(g.lastContactAt)) / 1000)
    perGateway('sos_gateway_outbox_depth', "Events waiting in each gateway's outbox, as it last reported", (g) => g.outbox?.depth)
  }

  /** Every gateway that named itself, with its devices, last call and outbox. */
  async list (): Promise<GatewayStatus[]> {
    const rows = await this.db.query<{
      id: string, last_contact_at: Date, silent: boolean, contact_lost: boolean, shared_id: boolean, devices: number, outbox_depth: number | null,
      outbox_full: boolean | null, outbox_oldest_age_ms: number | null, reported_at: Date | null
    }>(`
      SELECT g.id, g.last_contact_at, g.last_contact_at <= now() - make_interval(secs => $1::float8 / 1000.0) AS silent,
             c.last_contact_at <= now() - make_interval(secs => $1::float8 / 1000.0) AS contact_lost, c.shared_id,
             devices, outbox_depth, outbox_full, outbox_oldest_age_ms, reported_at
      FROM (SELECT g.*, (SELECT count(*) FROM devices d WHERE d.gateway_id = g.id AND d.revoked_at IS NULL)::int8 AS devices FROM gateways g) g
      JOIN ${this.instances.contact(this.floorMs)} c ON c.id = g.id
      ORDER BY id`, [this.options.lostAfterMs])
    return rows.map((r) => ({
      id: r.id,
      lastContactAt: r.last_contact_at.toISOString(),
      silent: r.silent,
      lost: r.contact_lost && Number(r.devices) > 0,
      devices: Number(r.devices),
      sharedId: r.shared_id,
      outbox: r.reported_at === null
        ? null
        : { depth: r.outbox_depth ?? 0, full: r.outbox_full ?? false, oldestAgeMs: r.outbox_oldest_age_ms === null ? null : Number(r.outbox_oldest_age_ms), reportedAt: r.reported_at.toISOString() }
    }))
  }

  async start (): Promise<void> {
    if (this.timer) return
    this.floorMs = await this.dbNow(this.db)
    const every = this.options.checkEveryMs ?? Math.min(5000, Math.max(250, this.options.lostAfterMs / 4))
    this.timer = setInterval(() => { void this.check() }, every)
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.passes.settled()
  }

  /** One pass; never overlaps itself, never throws, never waits longer than its deadline. */
  check (): Promise<void> {
    return this.passes.run((abandoned) => this.pass(abandoned))
  }

  /** Gateways lost at the last pass, by id. */
  lostGateways (): string[] {
    return [...this.lost]
  }

  /** A tenth of the interval at most (10 s by default's 90 s): contact is never far behind. */
  private writeEveryMs (): number {
    return Math.min(10_000, this.options.lostAfterMs / 10)
  }

  /**
   * Resolves first (devices heard again), then raises for the silent devices of lost gateways,
   * each a slice at a time in transactions of their own that never wait long for a lock: an
   * ingest batch always goes first, the watch tries again at its next pass.
   */
  private async pass (abandoned: AbortSignal): Promise<void> {
    const now = await this.dbNow(this.db)
    if (abandoned.aborted) return
    this.giveTimeAfterStall(now)
    // Slices until none is full (bounded: what is left waits for the next pass). An abandoned
    // pass stops at its next slice: the pass after it takes up the rest.
    for (let slice = 0; slice < MAX_SLICES && !abandoned.aborted; slice++) {
      const resolved = await this.turn((tx) => this.resolveHeardAgain(tx))
      for (const alert of resolved ?? []) await this.lifecycle.afterCommit(alert, 'resolved')
      if (resolved?.length !== SLICE) break
    }
    if (abandoned.aborted) return
    await this.instances.forgetOld()
    const lost = await this.turn((tx) => this.silentGateways(tx, now))
    // Another instance is watching right now: the rest of this pass is its.
    if (lost === undefined || abandoned.aborted) return
    for (let slice = 0; lost.length > 0 && slice < MAX_SLICES && !abandoned.aborted; slice++) {
      const raised = await this.turn((tx) => this.raiseFor(tx, lost, now))
      for (const alert of raised ?? []) {
        if (alert.created) this.metrics.alertsOpened.inc({ kind: alert.kind })
        this.bus.emit('alert', { alertId: alert.alertId, deviceId: alert.deviceId, state: alert.state, kind: alert.kind })
      }
      if (raised?.length !== SLICE) break
    }
    // The pass after an abandoned one logs the changes and keeps the set.
    if (abandoned.aborted) return
    for (const id of lost) if (!this.lost.has(id)) this.log?.warn({ gateway: id }, 'gateway lost: not heard from; its silent devices are reported offline')
    for (const id of this.lost) if (!lost.includes(id)) this.log?.info({ gateway: id }, 'gateway heard again')
    this.lost = new Set(lost)
  }

  /**
   * One transaction of the watch, or undefined when another instance holds the turn. On
   * PostgreSQL it waits at most 200 ms for any row: a batch holding one is never held up by
   * the watch (nor deadlocked with it), and what was not done now is done at the next pass.
   */
  private async turn<T> (work: (tx: Queryable) => Promise<T>): Promise<T | undefined> {
    try {
      return await this.db.transaction(async (tx) => {
        if (this.db.engine === 'postgres') {
          // Server instances take turns: one pass at a time across all of them, the others skip theirs.
          const [row] = await tx.query<{ mine: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS mine', [ADVISORY_LOCKS.gatewayWatchPass])
          if (!row?.mine) return undefined
          await tx.query("SET LOCAL lock_timeout = '200ms'")
        }
        return await work(tx)
      })
    } catch (err) {
      // A row a batch held past the timeout (55P03): that batch went first, as it should.
      if ((err as { code?: string }).code === '55P03') return undefined
      throw err
    }
  }

  /**
   * After a gap between passes of half an interval (the process paused, the database away:
   * nobody could record contact), or a database clock that moved otherwise than ours, silence
   * counts afresh from now. (A pass another instance had the turn for still counts: the
   * database answered.)
   */
  private giveTimeAfterStall (nowMs: number): void {
    const monotonicMs = performance.now()
    const last = this.lastPass
    this.lastPass = { monotonicMs, dbMs: nowMs }
    if (!last) return
    const gap = monotonicMs - last.monotonicMs
    const limit = this.options.stallAfterMs ?? this.options.lostAfterMs / 2
    if (gap > limit || Math.abs((nowMs - last.dbMs) - gap) > limit) {
      this.floorMs = nowMs
      this.log?.warn({ gapMs: Math.round(gap) }, 'gateway watch: after a stall, every gateway gets a full interval again')
    }
  }

  /** Gateways with devices that have not called for the interval (counted from the floor). */
  private async silentGateways (tx: Queryable, nowMs: number): Promise<string[]> {
    const rows = await tx.query<{ id: string }>(`
      SELECT g.id FROM ${this.instances.contact(this.floorMs)} g
      WHERE GREATEST(g.last_contact_at, to_timestamp($1::float8 / 1000.0)) <= to_timestamp($2::float8 / 1000.0)
        AND EXISTS (SELECT 1 FROM devices d WHERE d.gateway_id = g.id AND d.revoked_at IS NULL)
      ORDER BY g.id`, [this.floorMs, nowMs - this.options.lostAfterMs])
    return rows.map((r) => r.id)
  }

  /** A `device_offline` alert for each device behind a lost gateway that is silent too. */
  private async raiseFor (tx: Queryable, gatewayIds: string[], nowMs: number): Promise<RaisedAlert[]> {
    const devices = await tx.query<{ id: string, gateway_id: string, silent_s: number }>(`
      SELECT d.id, d.gateway_id, extract(epoch FROM now() - g.last_contact_at)::float8 AS silent_s
      FROM devices d JOIN ${this.instances.contact(this.floorMs)} g ON g.id = d.gateway_id
      WHERE d.gateway_id = ANY($1::text[]) AND d.revoked_at IS NULL
        -- Heard lately all the same (through another gateway, say): not lost.
        AND (d.heard_at IS NULL OR d.heard_at <= to_timestamp($2::float8 / 1000.0))
        -- One its gateway reported offline has its alert already (or had it, and an operator
        -- closed it): it was not lost with the gateway.
        AND d.online IS DISTINCT FROM false
        -- Once per outage: not while one is open, nor again once an operator closed the one
        -- the watch opened for this outage.
        AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = d.id AND a.kind = 'device_offline'
                          AND (a.state IN ${ACTIVE} OR (a.opened_at > g.last_contact_at AND EXISTS (
                            SELECT 1 FROM alert_transitions t WHERE t.alert_id = a.id AND t.from_state IS NULL AND t.actor = $3))))
      ORDER BY d.id
      LIMIT ${SLICE}`, [gatewayIds, nowMs - this.options.lostAfterMs, GATEWAY_WATCH_ACTOR])
    if (devices.length === 0) return []
    const alerts = await raiseAlerts(tx, devices.map((d) => ({
      deviceId: d.id, kind: 'device_offline' as const, atMs: nowMs, actor: GATEWAY_WATCH_ACTOR,
      note: `gateway ${d.gateway_id} not heard from for ${Math.round(d.silent_s)} s: the device is not supervised until it is heard again`
    })))
    return alerts.filter((a): a is RaisedAlert => a !== null)
  }

  /**
   * Resolves the alerts this watch opened whose device has been heard since (a new event
   * stored). One its gateway has since reported offline itself stays open: that report, not
   * the watch, decides it now.
   */
  private async resolveHeardAgain (tx: Queryable): Promise<LockedAlert[]> {
    const alerts = await tx.query<LockedAlert & { gateway_id: string | null }>(`
      SELECT a.id, a.device_id, a.kind, a.state, a.last_seq, a.opened_at, d.silent, d.gateway_id
      FROM alerts a JOIN devices d ON d.id = a.device_id
      WHERE a.kind = 'device_offline' AND a.state IN ${ACTIVE}
        AND d.heard_at > a.opened_at AND d.online IS DISTINCT FROM false
        AND EXISTS (SELECT 1 FROM alert_transitions t WHERE t.alert_id = a.id AND t.from_state IS NULL AND t.actor = $1)
      ORDER BY a.device_id
      LIMIT ${SLICE}
      -- One a batch holds (a device coming back, pressing) is left to the next pass.
      FOR UPDATE OF a SKIP LOCKED`, [GATEWAY_WATCH_ACTOR])
    for (const alert of alerts) {
      await this.lifecycle.transition(tx, alert, 'resolved', { actor: GATEWAY_WATCH_ACTOR, note: `heard again${alert.gateway_id ? ` through gateway ${alert.gateway_id}` : ''}` })
    }
    return alerts
  }

  /** The database's clock now (not its transaction's start, which may be before a wait). */
  private async dbNow (q: Queryable): Promise<number> {
    const [row] = await q.query<{ now: Date }>('SELECT clock_timestamp() AS now')
    return row!.now.getTime()
  }
}
