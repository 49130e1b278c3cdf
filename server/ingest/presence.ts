/**
 * Presence from gateways: `offline` raises a `device_offline` alert (one per device, further
 * reports coalesce into it), `online` resolves that alert ("back online", by the gateway).
 * Stale or repeated changes (an older one, or the same batch resent) change nothing, nor does
 * an `offline` from a gateway the device has left: reported online by another since, and not
 * heard through this one since, it is that one's to report (the old gateway sees the
 * connection it left die a keepalive later, or after its own restart, a heartbeat interval
 * later). Heard through it since the other's report was taken counts as well as reported online
 * by it: a gateway restarted or renamed does not report again a device it had online when it
 * stopped. (Heard through it before that is the device's past there: the one it left.)
 */
import type { Queryable } from '../db/database.js'
import type { PresenceChange } from '../../protocol/index.js'
import { SELECT_LOCKED_ALERT, type AlertLifecycle, type LockedAlert } from '../alerts/lifecycle.js'
import { raiseAlert, type RaisedAlert } from './raise-alert.js'

export interface PresenceEffects {
  raised: RaisedAlert[]
  resolved: LockedAlert[]
  devices: Array<{ deviceId: string, change: string }>
}

export async function applyPresence (tx: Queryable, changes: PresenceChange[], lifecycle: AlertLifecycle): Promise<PresenceEffects> {
  const effects: PresenceEffects = { raised: [], resolved: [], devices: [] }
  for (const change of [...changes].sort((a, b) => a.at - b.at)) {
    const updated = await tx.query(`
      UPDATE devices SET online = $2, presence_at = to_timestamp($3 / 1000.0), presence_reason = $4, presence_gateway_id = $5,
        presence_recorded_at = clock_timestamp(), updated_at = updated_at
      WHERE id = $1 AND revoked_at IS NULL AND (presence_at IS NULL OR presence_at < to_timestamp($3 / 1000.0))
        AND ($2 OR NOT online OR presence_gateway_id IS NULL OR presence_gateway_id = $5 OR $4 = 'revoked'
          OR (gateway_id = $5 AND heard_at > COALESCE(presence_recorded_at, '-infinity')))
      RETURNING id`, [change.deviceId, change.state === 'online', change.at, change.reason, change.gatewayId])
    if (updated.length === 0) continue
    effects.devices.push({ deviceId: change.deviceId, change: change.state })
    const actor = `gateway:${change.gatewayId}`
    if (change.state === 'offline') {
      // A revoked device is expected to go away.
      if (change.reason === 'revoked') continue
      // Never in the future, as for a press (ingest.ts causeOf): a fast gateway clock.
      const raised = await raiseAlert(tx, { deviceId: change.deviceId, kind: 'device_offline', atMs: Math.min(change.at, Date.now()), actor })
      if (raised) effects.raised.push(raised)
    } else {
      const rows = await tx.query<LockedAlert>(`${SELECT_LOCKED_ALERT}
        WHERE a.device_id = $1 AND a.kind = 'device_offline' AND a.state IN ('open', 'acknowledged', 'dispatched')
        FOR UPDATE OF a`, [change.deviceId])
      const alert = rows[0]
      if (!alert) continue
      await lifecycle.transition(tx, alert, 'resolved', { actor, note: 'back online' })
      effects.resolved.push(alert)
    }
  }
  return effects
}
