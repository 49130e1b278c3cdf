/**
 * A cap on the size of one MQTT packet. MQTT lets a packet declare up to 256 MB, and aedes'
 * parser (mqtt-packet) buffers a packet whole before anyone sees it, with no limit of its own:
 * one socket, even one that never authenticates, could make the gateway hold gigabytes and take
 * every other device's alarms down with it. Devices publish at most 4 KiB (DESIGN §3), and a
 * payload over that is still read, acknowledged, dead-lettered and answered `rejected`; only a
 * packet declaring more than the cap closes its connection, as soon as its fixed header says so,
 * before its body is read. Before CONNACK the cap is smaller: a CONNECT (client id, credentials,
 * will) needs little, and every socket that has not signed in yet may hold that much.
 */
import { PassThrough } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { Parser } from 'mqtt-packet'
import { MAX_EVENT_BYTES } from '../protocol/index.js'

/** 16 times an event's limit: room for any topic and payload a device may send. */
export const MAX_PACKET_BYTES = 16 * MAX_EVENT_BYTES
/** Before the connection is accepted. */
export const MAX_PACKET_BYTES_BEFORE_CONNACK = 2 * MAX_EVENT_BYTES

/** What aedes keeps of its per-connection parser: the packet being read, -1 until its length is known. */
interface ClientParser extends Parser {
  packet?: { length: number }
  error?: Error | null
}

function parserOf (client: Client): ClientParser | undefined {
  const parser = (client as unknown as { _parser?: ClientParser })._parser
  return parser !== undefined && typeof parser.parse === 'function' && parser.packet !== undefined ? parser : undefined
}

/**
 * The guard reads aedes' internals: checked once when the gateway starts (on a connection of
 * its own making), so an aedes upgrade that moves them stops the start, loudly, instead of
 * leaving connections unguarded or failing each one.
 */
export function assertPacketSizeGuardable (broker: Aedes): void {
  const probe = broker.handle(new PassThrough())
  const guardable = parserOf(probe) !== undefined
  probe.close()
  if (!guardable) throw new Error('aedes clients have no mqtt-packet parser to guard: check gateway/packet-size-guard.ts against this aedes version')
}

/**
 * Watches what the client's parser has been told about the packet it is reading. The check runs
 * after each chunk the socket hands over (at most a socket read, 64 KiB), so a connection holds
 * at most one packet limit plus one chunk.
 */
export function guardPacketSize (client: Client, onOversized: (declaredBytes: number, limit: number) => void): void {
  const parser = parserOf(client)!
  const parse = parser.parse.bind(parser)
  let closed = false
  parser.parse = (buffer: Buffer) => {
    const buffered = parse(buffer)
    // A malformed packet is aedes' to refuse (it closes the connection); not a size matter.
    if (closed || parser.error) return buffered
    const limit = (client as Client & { connackSent?: boolean }).connackSent === true ? MAX_PACKET_BYTES : MAX_PACKET_BYTES_BEFORE_CONNACK
    const declared = parser.packet!.length
    if (declared > limit || buffered > limit + 5) {
      closed = true
      onOversized(Math.max(declared, buffered), limit)
      client.close()
    }
    return buffered
  }
}
