/**
 * The gateway processes that call under each gateway id (migration 8). Two gateways configured
 * with one GATEWAY_ID (a cloned SD card keeps its host name, the default id) would hide each
 * other's loss from the gateway watch. Each process names itself (X-Gateway-Instance); two that
 * called over the same stretch of time, longer than a restarted process's leftover calls could,
 * are twins, and the watch counts the id's contact as that of the twin heard least recently.
 */
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { Queryable } from '../db/database.js'

const FORGET_EVERY_MS = 10 * 60_000

export class GatewayInstances {
  private forgottenAt = -Infinity

  constructor (
    private readonly db: Queryable,
    private readonly lostAfterMs: number,
    private readonly log?: FastifyBaseLogger
  ) {}

  /** Records the calling process's contact, and says so once when it turns out to have a twin. */
  async heard (gatewayId: string, instanceId: string): Promise<void> {
    await this.db.query(`INSERT INTO gateway_instances (gateway_id, instance_id, first_contact_at, last_contact_at)
      VALUES ($1, $2, now(), now())
      ON CONFLICT (gateway_id, instance_id) DO UPDATE SET last_contact_at = EXCLUDED.last_contact_at`, [gatewayId, instanceId])
    const twins = await this.db.query<{ instance_id: string }>(`
      WITH caller AS (SELECT first_contact_at, last_contact_at FROM gateway_instances WHERE gateway_id = $1 AND instance_id = $2),
      overlapping AS (
        SELECT o.instance_id FROM gateway_instances o, caller c
        WHERE o.gateway_id = $1 AND o.instance_id <> $2
          AND LEAST(o.last_contact_at, c.last_contact_at) - GREATEST(o.first_contact_at, c.first_contact_at) > make_interval(secs => $3::float8 / 1000.0))
      UPDATE gateway_instances i SET twin_since = now()
      WHERE i.gateway_id = $1 AND i.twin_since IS NULL AND EXISTS (SELECT 1 FROM overlapping)
        AND (i.instance_id = $2 OR i.instance_id IN (SELECT instance_id FROM overlapping))
      RETURNING i.instance_id`, [gatewayId, instanceId, this.twinOverlapMs()])
    if (twins.length > 0) {
      this.log?.error({ gateway: gatewayId, instances: twins.map((t) => t.instance_id) },
        'two gateway processes call under one GATEWAY_ID: give each gateway its own id (until then, the id counts as lost whenever one of them stops calling)')
    }
  }

  /**
   * A relation (id, shared_id, last_contact_at): each gateway's contact as the watch counts it,
   * its last call or, for an id twins call under, the last call of the twin heard least
   * recently, so the id is lost as soon as either stops calling and the silent devices behind
   * the dead one are reported. A twin silent for three intervals counts no more (renamed, or
   * restarted under a new instance id: its silent devices had their alerts by then), silence
   * counted from `floorMs` as for the lost gateways themselves (a twin that died while the watch
   * could not look still gets its full window after); `shared_id` lasts as long as its row.
   */
  contact (floorMs: number): string {
    return `(SELECT g.id, twins.shared_id,
        LEAST(g.last_contact_at, twins.live_twin_contact_at) AS last_contact_at
      FROM gateways g, LATERAL (SELECT count(*) > 0 AS shared_id,
          min(i.last_contact_at) FILTER (WHERE GREATEST(i.last_contact_at, to_timestamp(${Math.round(floorMs)} / 1000.0))
            > now() - make_interval(secs => ${Math.round(3 * this.lostAfterMs) / 1000})) AS live_twin_contact_at
        FROM gateway_instances i WHERE i.gateway_id = g.id AND i.twin_since IS NOT NULL) twins)`
  }

  /** Processes not heard from for a day are forgotten (every restart leaves one behind). */
  async forgetOld (): Promise<void> {
    if (performance.now() - this.forgottenAt < FORGET_EVERY_MS) return
    this.forgottenAt = performance.now()
    await this.db.query("DELETE FROM gateway_instances WHERE last_contact_at < now() - INTERVAL '1 day'")
  }

  /**
   * Two processes calling over a stretch longer than this are twins: a third of the interval
   * (30 s by default), far longer than the calls of a restarted process still under way.
   */
  private twinOverlapMs (): number {
    return this.lostAfterMs / 3
  }
}
