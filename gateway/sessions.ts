/** What the gateway knows about an authenticated MQTT client: the device behind it. */
import type { Client } from 'aedes'
import { deviceIdOfClientId, topics } from '../protocol/index.js'

export interface DeviceSession {
  deviceId: string
  kind: string
  zone: string
  silent: boolean
  /**
   * The secret hash the client's password matched (none for a client certificate): when the
   * device's secret is rotated, the sessions opened with the old one are closed.
   */
  secretHash?: string
}

const sessions = new WeakMap<Client, DeviceSession>()

export const setSession = (client: Client, session: DeviceSession) => { sessions.set(client, session) }
export const sessionOf = (client: Client | null): DeviceSession | undefined => client ? sessions.get(client) : undefined

/** The device's own connection (client id = device id), not a service tool's `{id}:{suffix}`. */
export function isPrimary (client: Client): boolean {
  const session = sessionOf(client)
  return session !== undefined && client.id === session.deviceId && deviceIdOfClientId(client.id) === session.deviceId
}

/** The client's subscription to its device's ack topic, if it holds one (restored with a resumed session too). */
export function ackSubscriptionOf (client: Client, deviceId: string): { qos: number } | undefined {
  return (client as Client & { subscriptions?: Record<string, { qos: number }> }).subscriptions?.[topics.ack(deviceId)]
}

/** Live connections per device (a device may hold a second one, `{id}:{suffix}`). */
export class ConnectedDevices {
  private readonly byDevice = new Map<string, Set<Client>>()

  add (client: Client): void {
    const session = sessions.get(client)
    if (!session) return
    let set = this.byDevice.get(session.deviceId)
    if (!set) this.byDevice.set(session.deviceId, set = new Set())
    set.add(client)
  }

  remove (client: Client): void {
    const session = sessions.get(client)
    if (!session) return
    const set = this.byDevice.get(session.deviceId)
    set?.delete(client)
    if (set?.size === 0) this.byDevice.delete(session.deviceId)
  }

  clientsOf (deviceId: string): Client[] {
    return [...this.byDevice.get(deviceId) ?? []]
  }

  isOnline (deviceId: string): boolean {
    return this.byDevice.has(deviceId)
  }
}
