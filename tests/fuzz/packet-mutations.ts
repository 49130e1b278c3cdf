/**
 * MQTT packets for the fuzzer: valid ones made by mqtt-packet (so the damage lands deep in the
 * broker's handlers, not only in the first byte check), and the ways to damage them.
 * Deterministic from a seed, so a failure can be replayed (FUZZ_SEED).
 */
import * as mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import { topics } from '../../protocol/index.js'

export type Rng = () => number

/** mulberry32: small, fast, good enough to pick test inputs. */
export function seededRandom (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <T>(r: Rng, items: readonly T[]): T => items[Math.floor(r() * items.length)]!
const int = (r: Rng, max: number) => Math.floor(r() * (max + 1))
const bytes = (r: Rng, max: number) => Buffer.from(Array.from({ length: int(r, max) }, () => int(r, 255)))

export interface FuzzContext {
  deviceId: string
  secret: string
  authenticated: boolean
}

function topicFor (r: Rng, c: FuzzContext): string {
  return pick(r, [
    topics.event(c.deviceId), topics.status(c.deviceId), topics.ack(c.deviceId), 'sos/v1/other-device/event',
    'sos/v1/announce/apd-1', '#', '+/+', '$SYS/broker/x', 'sos/v1/+/event', '', '/', 'a/'.repeat(20), 'x'.repeat(300),
    'sos/v1/\u0000/event', bytes(r, 12).toString('latin1')
  ])
}

function payloadFor (r: Rng): Buffer | string {
  return pick(r, [
    () => JSON.stringify({ seq: int(r, 1e6), type: pick(r, ['press', 'heartbeat', 'test', 'report', 'nope']) }),
    () => JSON.stringify({ seq: -1, type: 'press', report: { category: 'x' } }),
    () => 'online',
    () => bytes(r, 256),
    () => Buffer.alloc(int(r, 6000), 0x7b)
  ])()
}

/** A well-formed packet of a random kind (`valid-connect`: the device's own correct CONNECT). */
export function randomPacket (r: Rng, kind: 'any' | 'valid-connect', c: FuzzContext): Buffer {
  if (kind === 'valid-connect') {
    return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `${c.deviceId}:fz${int(r, 99)}`, keepalive: 30, username: c.deviceId, password: Buffer.from(c.secret) })
  }
  const packets: Array<() => Packet> = [
    () => ({
      cmd: 'connect',
      protocolId: pick(r, ['MQTT', 'MQIsdp'] as const),
      protocolVersion: pick(r, [3, 4, 5] as const),
      clean: r() < 0.5,
      clientId: pick(r, [c.deviceId, `${c.deviceId}:x`, 'unknown-device', `dev-${int(r, 1e6)}`, '', 'A'.repeat(200), bytes(r, 20).toString('latin1')]),
      keepalive: int(r, 65535),
      ...(r() < 0.7 ? { username: pick(r, [c.deviceId, 'admin', '', bytes(r, 10).toString('latin1')]) } : {}),
      ...(r() < 0.6 ? { password: r() < 0.2 ? Buffer.from(c.secret + 'x') : bytes(r, 40) } : {}),
      ...(r() < 0.3 ? { will: { topic: topicFor(r, c), payload: payloadFor(r), qos: pick(r, [0, 1, 2] as const), retain: r() < 0.5 } } : {})
    }),
    () => ({ cmd: 'publish', topic: topicFor(r, c), payload: payloadFor(r), qos: pick(r, [0, 1, 2] as const), retain: r() < 0.3, dup: r() < 0.2, messageId: 1 + int(r, 65534) }),
    () => ({ cmd: 'subscribe', messageId: 1 + int(r, 65534), subscriptions: Array.from({ length: 1 + int(r, 3) }, () => ({ topic: topicFor(r, c), qos: pick(r, [0, 1, 2] as const) })) }),
    () => ({ cmd: 'unsubscribe', messageId: 1 + int(r, 65534), unsubscriptions: [topicFor(r, c)] }),
    () => ({ cmd: 'pingreq' }),
    () => ({ cmd: 'puback', messageId: 1 + int(r, 65534) }),
    () => ({ cmd: 'pubrel', messageId: 1 + int(r, 65534) }),
    () => ({ cmd: 'disconnect' })
  ]
  try {
    return mqttPacket.generate(pick(r, packets)())
  } catch {
    // mqtt-packet refuses some combinations (e.g. an empty topic): then random bytes.
    return bytes(r, 64)
  }
}

/** Damages a packet: flips, truncates, inserts, lies about the remaining length, or repeats it. */
export function mutate (r: Rng, packet: Buffer): Buffer {
  const out = Buffer.from(packet)
  switch (int(r, 5)) {
    case 0: // keep it valid: the handlers must cope with valid but hostile packets too
      return out
    case 1:
      for (let i = 0, n = 1 + int(r, 4); i < n && out.length > 0; i++) out[int(r, out.length - 1)] = int(r, 255)
      return out
    case 2:
      return out.subarray(0, int(r, out.length))
    case 3: {
      const at = int(r, out.length)
      return Buffer.concat([out.subarray(0, at), bytes(r, 16), out.subarray(at)])
    }
    case 4: // a remaining length far beyond what follows (up to the 4-byte maximum)
      return Buffer.concat([out.subarray(0, 1), Buffer.from([0xff, 0xff, 0xff, 0x7f]), out.subarray(2)])
    default:
      return Buffer.concat([out, out])
  }
}
