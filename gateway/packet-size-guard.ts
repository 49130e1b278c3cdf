/**
 * A cap on the size of one MQTT packet. MQTT lets a packet declare up to 256 MB, and aedes'
 * parser (mqtt-packet) buffers a packet whole before anyone sees it, with no limit of its own:
 * one socket, even one that never authenticates, could make the gateway hold gigabytes and take
 * every other device's alarms down with it. Devices publish at most 4 KiB (DESIGN §3), and a
 * payload over that is still read, acknowledged, dead-lettered and answered `rejected`; only a
 * packet declaring more than MAX_PACKET_BYTES closes its connection, as soon as its fixed
 * header says so, before its body is read.
 */
import type { Client } from 'aedes'
import type { Parser } from 'mqtt-packet'
import { MAX_EVENT_BYTES } from '../protocol/index.js'

/** 16 times an event's limit: room for any topic, CONNECT credentials and will. */
export const MAX_PACKET_BYTES = 16 * MAX_EVENT_BYTES

/** What aedes keeps of its per-connection parser: the packet being read, -1 until its length is known. */
interface ClientParser extends Parser {
  packet: { length: number }
}

/**
 * Watches what the client's parser has been told about the packet it is reading. The check runs
 * after each chunk the socket hands over (at most a socket read, 64 KiB), so a connection holds
 * at most one packet limit plus one chunk.
 */
export function guardPacketSize (client: Client, onOversized: (declaredBytes: number) => void, maxBytes = MAX_PACKET_BYTES): void {
  const parser = (client as unknown as { _parser?: ClientParser })._parser
  // The check reads aedes' internals; an upgrade that moves them must fail loudly, not unguard.
  if (parser === undefined || typeof parser.parse !== 'function' || parser.packet === undefined) {
    throw new Error('aedes client has no mqtt-packet parser to guard: check the packet size guard against this aedes version')
  }
  const parse = parser.parse.bind(parser)
  let closed = false
  parser.parse = (buffer: Buffer) => {
    const buffered = parse(buffer)
    const declared = parser.packet.length
    if (!closed && (declared > maxBytes || buffered > maxBytes + 5)) {
      closed = true
      onOversized(Math.max(declared, buffered))
      client.close()
    }
    return buffered
  }
}
