/**
 * The newest state of each alert a device was told, kept until the device itself confirms it
 * (its PUBACK), and told again when the device is back.
 *
 * Why: an ack is published once, at QoS 1, into the broker. A device away at that moment (its
 * link dropped for a while, or the gateway restarting: aedes keeps sessions in memory, and the
 * downlink relay publishes what the server queued meanwhile before the devices are back) or
 * signed in at another gateway never heard "acknowledged": the pedestrian's button went on
 * blinking "received" while help was on its way, or for good once the alert was resolved.
 *
 * Only acks naming an alert are kept (the states of an alarm), one per alert, never moved back
 * to an earlier state (a late `received` must not undo "help is coming"), and only until the
 * device's own connection (not a service tool's `{id}:{suffix}`) acknowledges that very message.
 * On the device resuming its persistent session, or subscribing to its ack topic, each is sent
 * again: the same message, which a device takes as it took it the first time. Kept on disk
 * (gateway.sqlite, through the writer thread) so a gateway restart keeps them too; bounded per
 * device and by age.
 *
 * Every gateway keeps every device's states, also of devices it has never served: acks reach
 * every gateway, and a device whose gateway fails signs in at one new to it, where it must hear
 * "help is coming" all the same. The cost is small: alarm acks are few, a write and a delete each.
 *
 * Each row is written with `writeLatest`: while the disk hangs, only the newest write of each
 * (device, alert) waits in memory, not one for every `received` of a button pressed in a frenzy.
 *
 * A device on a clean session has nothing to confirm by (the broker keeps no record of what its
 * PUBACKs answer, nor does MQTT promise such a session more): a state published while it is
 * connected and subscribed counts as heard.
 */
import type { Ack, AckState } from '../protocol/index.js'
import type { StateDb } from './state-db.js'
import type { StateWriter } from './state-writer.js'

/** An alert's states in the order they happen; a later one is never replaced by an earlier. */
const STATE_ORDER: Partial<Record<AckState, number>> = { received: 0, acknowledged: 1, dispatched: 2, resolved: 3, cancelled: 3 }
/** Alerts kept per device (a device has one or two at a time; more is a flood of old ones). */
const PER_DEVICE = 8
/** An unconfirmed state older than this is forgotten: the device has been gone too long to care. */
const KEEP_MS = 7 * 24 * 3600_000

interface Unconfirmed { alertId: string, state: AckState, body: string, at: number }

export class AckReplay {
  private readonly byDevice = new Map<string, Map<string, Unconfirmed>>()

  constructor (
    db: StateDb,
    private readonly writer: StateWriter,
    private readonly publish: (topic: string, body: string) => void,
    /** Whether the device's own connection takes a message now with nothing to confirm it by (a clean session, subscribed). */
    private readonly heardAtOnce: (deviceId: string) => boolean,
    private readonly now: () => number = Date.now
  ) {
    const rows = db.prepare('SELECT device_id, alert_id, state, body, at FROM unconfirmed_acks WHERE at > ? ORDER BY at')
      .all(this.now() - KEEP_MS) as Array<{ device_id: string, alert_id: string, state: AckState, body: string, at: number }>
    for (const row of rows) {
      for (const forgotten of this.remember(row.device_id, { alertId: row.alert_id, state: row.state, body: row.body, at: row.at })) this.forget(row.device_id, forgotten)
    }
    this.writer.write({ sql: 'DELETE FROM unconfirmed_acks WHERE at <= ?', params: [this.now() - KEEP_MS] })
  }

  /** Sends an ack naming an alert to the device (`topic`), kept until it is heard. */
  send (deviceId: string, topic: string, ack: Ack & { alertId: string }): void {
    const body = JSON.stringify(ack)
    this.publish(topic, body)
    const rank = STATE_ORDER[ack.state]
    if (rank === undefined) return
    const known = this.byDevice.get(deviceId)?.get(ack.alertId)
    // Never back to an earlier state (the earlier is still sent: it may carry news of its own).
    if (known && STATE_ORDER[known.state]! > rank) return
    if (this.heardAtOnce(deviceId)) {
      if (known) this.forget(deviceId, ack.alertId)
      return
    }
    const entry = { alertId: ack.alertId, state: ack.state, body, at: this.now() }
    for (const forgotten of this.remember(deviceId, entry)) this.forget(deviceId, forgotten)
    this.writer.writeLatest(rowKey(deviceId, entry.alertId), {
      sql: `INSERT INTO unconfirmed_acks (device_id, alert_id, state, body, at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (device_id, alert_id) DO UPDATE SET state = excluded.state, body = excluded.body, at = excluded.at`,
      params: [deviceId, entry.alertId, entry.state, body, entry.at]
    })
  }

  /** Whether anything waits for the device's confirmation (cheap: asked at every PUBACK). */
  holds (deviceId: string): boolean {
    return this.byDevice.has(deviceId)
  }

  /** The device's own connection acknowledged `payload` on its ack topic. */
  confirmed (deviceId: string, payload: Buffer | string): void {
    const alerts = this.byDevice.get(deviceId)
    if (!alerts) return
    const body = payload.toString()
    for (const entry of alerts.values()) {
      if (entry.body !== body) continue
      this.forget(deviceId, entry.alertId)
      return
    }
  }

  /** Sends the device again what it has not confirmed, oldest first (what is too old is forgotten instead). */
  replay (deviceId: string, topic: string): number {
    const alerts = this.byDevice.get(deviceId)
    if (!alerts) return 0
    const oldest = this.now() - KEEP_MS
    for (const entry of [...alerts.values()]) if (entry.at <= oldest) this.forget(deviceId, entry.alertId)
    const entries = [...alerts.values()].sort((a, b) => a.at - b.at)
    for (const entry of entries) this.publish(topic, entry.body)
    if (this.heardAtOnce(deviceId)) for (const entry of entries) this.forget(deviceId, entry.alertId)
    return entries.length
  }

  /** Unconfirmed states held, for the metrics. */
  size (): number {
    let n = 0
    for (const alerts of this.byDevice.values()) n += alerts.size
    return n
  }

  /** Keeps `entry`, newest last; returns the alerts it pushed out past PER_DEVICE. */
  private remember (deviceId: string, entry: Unconfirmed): string[] {
    let alerts = this.byDevice.get(deviceId)
    if (!alerts) this.byDevice.set(deviceId, alerts = new Map())
    alerts.delete(entry.alertId)
    alerts.set(entry.alertId, entry)
    const over = [...alerts.keys()].slice(0, Math.max(0, alerts.size - PER_DEVICE))
    for (const alertId of over) alerts.delete(alertId)
    return over
  }

  private forget (deviceId: string, alertId: string): void {
    const alerts = this.byDevice.get(deviceId)
    alerts?.delete(alertId)
    if (alerts?.size === 0) this.byDevice.delete(deviceId)
    this.writer.writeLatest(rowKey(deviceId, alertId), { sql: 'DELETE FROM unconfirmed_acks WHERE device_id = ? AND alert_id = ?', params: [deviceId, alertId] })
  }
}

/** The writes of one row replace each other while they wait (only the newest matters). */
const rowKey = (deviceId: string, alertId: string) => `unconfirmed_acks/${deviceId}/${alertId}`
