/**
 * Path supervision: the server watches its gateways as the gateways watch their devices.
 *
 * A gateway reports its devices' outages itself (supervisor.ts), but nobody reports the
 * gateway's own: a host that burns, a cut link to the server, a process hung for good. Every
 * device behind it would go silent unreported, its presses lost. So each gateway request
 * (the downlink long poll never stops for long, ingest batches, credential lookups) counts as
 * contact, and a gateway not heard from for GATEWAY_LOST_AFTER is lost: each of its devices
 * not already reported offline gets a `device_offline` alert, opened by `system:gateway-watch`
 * with the reason. When the gateway is heard again, those alerts are resolved; from then on the
 * gateway reports its devices itself (a device that really went away meanwhile is reported by
 * it, as after any restart).
 *
 * Contact is kept in memory, on the server's clock (a gateway's clock may be off). A server
 * that starts gives every gateway known from the devices table a full interval to call before
 * counting it lost, and resolves nothing until a gateway is heard: a restart neither raises nor
 * resolves alerts by itself.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/database.js'
import type { Bus } from '../bus.js'
import type { ServerMetrics } from '../metrics.js'
import type { AlertLifecycle, LockedAlert } from '../alerts/lifecycle.js'
import { raiseAlerts } from '../ingest/raise-alert.js'

/** Who opens and resolves the alerts of a lost gateway, in the audit trail. */
export const GATEWAY_WATCH_ACTOR = 'system:gateway-watch'

export interface GatewayWatchOptions {
  /** A gateway not heard from for this long is lost (GATEWAY_LOST_AFTER). */
  lostAfterMs: number
  /** How often to look; default a quarter of `lostAfterMs`, at most 5 s. */
  checkEveryMs?: number
}

const ACTIVE = "('open', 'acknowledged', 'dispatched')"

export class GatewayWatch {
  /** Last contact per gateway id, server time; gateways known at start begin at the start. */
  private readonly lastContact = new Map<string, number>()
  /** Gateways that called since this server started: only these can be heard again. */
  private readonly heardSinceStart = new Set<string>()
  private readonly lost = new Set<string>()
  private timer?: NodeJS.Timeout
  private running?: Promise<void>

  constructor (
    private readonly db: Database,
    private readonly bus: Bus,
    private readonly lifecycle: AlertLifecycle,
    private readonly metrics: ServerMetrics,
    private readonly options: GatewayWatchOptions,
    private readonly log?: FastifyBaseLogger,
    private readonly now: () => number = Date.now
  ) {}

  /** A gateway called (authenticated): it is alive and can reach us. */
  heard (gatewayId: string): void {
    this.lastContact.set(gatewayId, this.now())
    this.heardSinceStart.add(gatewayId)
  }

  async start (): Promise<void> {
    if (this.timer) return
    const startedAt = this.now()
    // A gateway that died while this server was down is still watched.
    const known = await this.db.query<{ gateway_id: string }>(
      'SELECT DISTINCT gateway_id FROM devices WHERE gateway_id IS NOT NULL AND revoked_at IS NULL')
    for (const { gateway_id: id } of known) if (!this.lastContact.has(id)) this.lastContact.set(id, startedAt)
    const every = this.options.checkEveryMs ?? Math.min(5000, Math.max(250, this.options.lostAfterMs / 4))
    this.timer = setInterval(() => { void this.check() }, every)
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  /** One pass; never overlaps itself, never throws. */
  check (): Promise<void> {
    this.running ??= this.pass(this.now())
      .catch((err) => { this.log?.error({ err }, 'gateway watch failed') })
      .finally(() => { this.running = undefined })
    return this.running
  }

  /** Gateways lost now, by id. */
  lostGateways (): string[] {
    return [...this.lost]
  }

  private async pass (now: number): Promise<void> {
    const silent = new Set([...this.lastContact].filter(([, at]) => now - at >= this.options.lostAfterMs).map(([id]) => id))
    for (const id of silent) {
      if (this.lost.has(id)) continue
      const raised = await this.raiseFor(id, now - this.lastContact.get(id)!, now)
      this.lost.add(id)
      this.log?.warn({ gateway: id, devices: raised }, 'gateway lost: not heard from; its devices are reported offline')
    }
    for (const id of this.lost) {
      if (silent.has(id)) continue
      this.lost.delete(id)
      this.log?.info({ gateway: id }, 'gateway heard again')
    }
    this.metrics.gatewaysLost.set(this.lost.size)
    await this.resolveHeardAgain([...this.heardSinceStart].filter((id) => !silent.has(id)))
  }

  /** A `device_offline` alert for each device behind the gateway not already reported offline. */
  private async raiseFor (gatewayId: string, silentMs: number, now: number): Promise<number> {
    const devices = await this.db.query<{ id: string }>(`
      SELECT d.id FROM devices d
      WHERE d.gateway_id = $1 AND d.revoked_at IS NULL
        -- One its gateway reported offline has its alert already (or had it, and an operator
        -- closed it): the device was not lost with the gateway.
        AND d.online IS DISTINCT FROM false
        AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = d.id AND a.kind = 'device_offline' AND a.state IN ${ACTIVE})
      ORDER BY d.id`, [gatewayId])
    if (devices.length === 0) return 0
    const note = `gateway ${gatewayId} not heard from for ${Math.round(silentMs / 1000)} s: the device is not supervised until it is back`
    const alerts = await raiseAlerts(this.db, devices.map((d) => ({ deviceId: d.id, kind: 'device_offline' as const, atMs: now, actor: GATEWAY_WATCH_ACTOR, note })))
    for (const alert of alerts) {
      if (!alert) continue
      if (alert.created) this.metrics.alertsOpened.inc({ kind: alert.kind })
      this.bus.emit('alert', { alertId: alert.alertId, deviceId: alert.deviceId, state: alert.state, kind: alert.kind })
    }
    return devices.length
  }

  /**
   * Resolves the alerts this watch opened whose device's gateway is heard again (or which is
   * heard through another gateway now). One its gateway has since reported offline itself
   * stays open: that report, not the watch, decides it now.
   */
  private async resolveHeardAgain (gatewayIds: string[]): Promise<void> {
    if (gatewayIds.length === 0) return
    const resolved = await this.db.transaction(async (tx) => {
      const alerts = await tx.query<LockedAlert & { gateway_id: string }>(`
        SELECT a.id, a.device_id, a.kind, a.state, a.last_seq, a.opened_at, d.silent, d.gateway_id
        FROM alerts a JOIN devices d ON d.id = a.device_id
        WHERE a.kind = 'device_offline' AND a.state IN ${ACTIVE}
          AND d.gateway_id = ANY($1::text[]) AND d.online IS DISTINCT FROM false
          AND EXISTS (SELECT 1 FROM alert_transitions t WHERE t.alert_id = a.id AND t.from_state IS NULL AND t.actor = $2)
        ORDER BY a.device_id
        FOR UPDATE OF a`, [gatewayIds, GATEWAY_WATCH_ACTOR])
      for (const alert of alerts) {
        await this.lifecycle.transition(tx, alert, 'resolved', { actor: GATEWAY_WATCH_ACTOR, note: `gateway ${alert.gateway_id} heard again` })
      }
      return alerts
    })
    for (const alert of resolved) await this.lifecycle.afterCommit(alert, 'resolved')
  }
}
