/**
 * A TCP proxy in front of PostgreSQL whose `blackhole()` makes the connections open at that
 * instant half-open, as a dead network path does: every byte either way is dropped, nothing is
 * closed (the database still thinks its client is there, the client that its database is), and
 * the proxy's own TCP stack still acknowledges, so keepalive sees nothing wrong. Connections
 * opened afterwards work.
 */
import net from 'node:net'
import type { AddressInfo } from 'node:net'

export interface HalfOpenProxy {
  port: number
  blackhole(): void
  /** Client sockets of blackholed connections that the client has since closed. */
  deadClosedByClient(): number
  close(): void
}

export function startHalfOpenProxy (targetPort: number, targetHost = '127.0.0.1'): Promise<HalfOpenProxy> {
  const pairs = new Set<{ client: net.Socket, database: net.Socket, dead: boolean }>()
  let deadClosedByClient = 0
  const server = net.createServer((client) => {
    const database = net.connect(targetPort, targetHost)
    const pair = { client, database, dead: false }
    pairs.add(pair)
    client.on('data', (d) => { if (!pair.dead) database.write(d) })
    database.on('data', (d) => { if (!pair.dead) client.write(d) })
    client.on('error', () => {})
    database.on('error', () => {})
    client.on('close', () => {
      if (pair.dead) deadClosedByClient++
      else { database.destroy(); pairs.delete(pair) }
    })
    database.on('close', () => { if (!pair.dead) { client.destroy(); pairs.delete(pair) } })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as AddressInfo).port,
    blackhole: () => { for (const pair of pairs) pair.dead = true },
    deadClosedByClient: () => deadClosedByClient,
    close: () => {
      for (const pair of pairs) { pair.client.destroy(); pair.database.destroy() }
      server.close()
    }
  })))
}

/** The outcome of `promise`, or 'pending' if it has not settled within `ms`. */
export async function settledWithin<T> (promise: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const pending = new Promise<'pending'>((resolve) => { timer = setTimeout(() => resolve('pending'), ms) })
  const outcome = await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), pending])
  clearTimeout(timer)
  return outcome
}
