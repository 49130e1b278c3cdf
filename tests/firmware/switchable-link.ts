/**
 * A TCP proxy between devices and the gateway's MQTT port that plays the network: `cut()` is
 * an outage (open connections die, new ones are closed as they come, as a refused connection
 * looks to MQTT.js), `blackhole()` one that answers nothing (new connections are accepted and
 * never served), `restore()` ends it. It counts connection attempts.
 */
import net from 'node:net'
import type { AddressInfo } from 'node:net'

export interface SwitchableLink {
  url: string
  /** Connections opened through the proxy so far, served or not. */
  readonly attempts: number
  cut(): void
  blackhole(): void
  restore(): void
  close(): Promise<void>
}

export async function startSwitchableLink (targetPort: number, targetHost = '127.0.0.1'): Promise<SwitchableLink> {
  let mode: 'up' | 'cut' | 'blackhole' = 'up'
  let attempts = 0
  const sockets = new Set<net.Socket>()
  const track = (socket: net.Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  }
  const dropAll = () => { for (const socket of sockets) socket.destroy() }

  const server = net.createServer((client) => {
    attempts++
    track(client)
    if (mode === 'cut') return void client.destroy()
    if (mode === 'blackhole') return
    const gateway = net.connect(targetPort, targetHost)
    track(gateway)
    client.pipe(gateway)
    gateway.pipe(client)
    client.on('close', () => gateway.destroy())
    gateway.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `mqtt://127.0.0.1:${port}`,
    get attempts () { return attempts },
    cut () { mode = 'cut'; dropAll() },
    blackhole () { mode = 'blackhole'; dropAll() },
    restore () { mode = 'up'; dropAll() },
    close: () => new Promise<void>((resolve) => { dropAll(); server.close(() => resolve()) })
  }
}
