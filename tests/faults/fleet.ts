/**
 * Simulated devices that behave like real QoS 1 firmware under faults: each event keeps its
 * (boot, seq) identity, is kept until PUBACKed, and is sent again after every reconnect.
 * The fleet records which events were PUBACKed and when, for the exactly-once check and the
 * recovery times. With `pressEvery`, one event in that many is a press, so the alarm lane (and
 * the alerts its presses open or join) is under the same faults as routine traffic.
 */
import { RawClient } from '../../bench/lib/raw-mqtt.js'
import type { DeviceCredentials } from '../../bench/lib/fleet.js'
import { eventIdOf, topics } from '../../protocol/index.js'

class SimDevice {
  private seq = 0
  private client?: RawClient
  private connecting = false
  private readonly unacked = new Map<number, string>()
  stopped = false

  constructor (private readonly creds: DeviceCredentials, readonly boot: string, private readonly fleet: Fleet) {}

  get pending (): number {
    return this.unacked.size
  }

  emit (): void {
    const seq = ++this.seq
    const press = this.fleet.pressEvery > 0 && seq % this.fleet.pressEvery === 0
    const payload = JSON.stringify({ seq, boot: this.boot, type: press ? 'press' : 'test', ts: Date.now() })
    this.unacked.set(seq, payload)
    this.send(seq, payload)
  }

  ensureConnected (): void {
    if (this.stopped || this.connecting || (this.client && !this.client.closed)) return
    this.connecting = true
    RawClient.connect({ port: this.fleet.port, clientId: this.creds.id, username: this.creds.id, password: this.creds.secret, keepalive: 30 }).then((client) => {
      this.connecting = false
      if (this.stopped) return client.destroy()
      this.client = client
      this.fleet.connects++
      client.onClose = () => setTimeout(() => this.ensureConnected(), 50 + Math.random() * 100)
      // Everything not PUBACKed yet goes again, oldest first: same seq, same event.
      for (const [seq, payload] of this.unacked) this.send(seq, payload)
    }, () => {
      this.connecting = false
      setTimeout(() => this.ensureConnected(), 100 + Math.random() * 100)
    })
  }

  private send (seq: number, payload: string): void {
    const client = this.client
    if (!client || client.closed) return this.ensureConnected()
    client.publish(topics.event(this.creds.id), payload, (err) => {
      if (err || !this.unacked.has(seq)) return
      this.unacked.delete(seq)
      this.fleet.acknowledged(eventIdOf(this.creds.id, seq, this.boot))
    })
  }

  stop (): void {
    this.stopped = true
    this.client?.destroy()
  }
}

export class Fleet {
  readonly acked = new Set<string>()
  /** Times (ms) of PUBACKs, to find when the flow resumed after a fault. */
  lastAckAt = 0
  connects = 0
  private readonly devices: SimDevice[]
  private timer?: NodeJS.Timeout
  private readonly waiters: Array<{ after: number, resolve: (at: number) => void }> = []

  constructor (readonly port: number, creds: DeviceCredentials[], runId: string, readonly pressEvery = 0) {
    this.devices = creds.map((c, i) => new SimDevice(c, `${runId}-${i}`, this))
  }

  get boots (): string[] {
    return this.devices.map((d) => d.boot)
  }

  get pending (): number {
    return this.devices.reduce((n, d) => n + d.pending, 0)
  }

  acknowledged (eventId: string): void {
    this.acked.add(eventId)
    this.lastAckAt = Date.now()
    for (const w of [...this.waiters]) {
      if (this.lastAckAt > w.after) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(this.lastAckAt) }
    }
  }

  /** Steady load: `ratePerSec` events/s spread over the devices. */
  start (ratePerSec: number): void {
    for (const d of this.devices) d.ensureConnected()
    let turn = 0
    let carry = 0
    const tickMs = 20
    this.timer = setInterval(() => {
      carry += ratePerSec * tickMs / 1000
      for (; carry >= 1; carry--) this.devices[turn++ % this.devices.length]!.emit()
    }, tickMs)
  }

  /** Resolves at the first PUBACK after `after` (ms): when the flow is back. */
  nextAckAfter (after: number, timeoutMs = 60_000): Promise<number> {
    if (this.lastAckAt > after) return Promise.resolve(this.lastAckAt)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no PUBACK within ${timeoutMs} ms`)), timeoutMs)
      this.waiters.push({ after, resolve: (at) => { clearTimeout(timer); resolve(at) } })
    })
  }

  /** Stops new events, then waits (bounded) until every event was PUBACKed. */
  async drain (timeoutMs = 60_000): Promise<number> {
    clearInterval(this.timer)
    const deadline = Date.now() + timeoutMs
    while (this.pending > 0 && Date.now() < deadline) {
      for (const d of this.devices) d.ensureConnected()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return this.pending
  }

  stop (): void {
    clearInterval(this.timer)
    for (const d of this.devices) d.stop()
  }
}
