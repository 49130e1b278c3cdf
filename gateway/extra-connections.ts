/**
 * A device's extra connections, `{deviceId}:{suffix}` (a service tool, a test subscriber:
 * DESIGN §3), capped per device. Uncapped, one device's secret (read out of one pole) opened a
 * connection under a new suffix until every slot of the gateway was taken, and every other
 * device heard "server unavailable": no alarm from any of them.
 *
 * A slot is taken once the secret checked out, and given back when the connection's stream
 * closes, whatever closed it (DISCONNECT, a dropped link, a take-over by the same client id, a
 * revocation, a rotated secret, the gateway stopping): every way out of aedes ends there
 * (client.js close → conn.destroy), so no path can leak a slot.
 */
import type { Client } from 'aedes'

/**
 * The connection count from which extra connections are refused: a twentieth of the gateway's
 * slots is kept for devices' own connections, so test subscribers and service tools never lock
 * the devices themselves out (below 20 slots, none is kept).
 */
export function extraConnectionsCeiling (maxConnections: number): number {
  return maxConnections - Math.floor(maxConnections / 20)
}

export class ExtraConnections {
  private readonly byDevice = new Map<string, Set<Client>>()

  constructor (readonly perDevice: number) {}

  /** Takes a slot of the device for `client`; false when the device holds all of its own. */
  take (deviceId: string, client: Client): boolean {
    // Gone while its secret was checked: nothing to hold (its stream's close has come, or is
    // on its way, and would not give a slot back taken now). aedes lets it go.
    if (client.closed || client.conn.destroyed) return true
    const held = this.byDevice.get(deviceId) ?? new Set<Client>()
    // Counted by client id: a connection taking over one of the device's client ids (a tool
    // reconnecting before its old link timed out) takes that id's place, and aedes closes the
    // one it replaces.
    const ids = new Set([...held].map((c) => c.id))
    if (!ids.has(client.id) && ids.size >= this.perDevice) return false
    held.add(client)
    this.byDevice.set(deviceId, held)
    client.conn.once('close', () => {
      held.delete(client)
      if (held.size === 0 && this.byDevice.get(deviceId) === held) this.byDevice.delete(deviceId)
    })
    return true
  }
}
