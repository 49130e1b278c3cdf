/**
 * Alarms sent to the server from memory while the outbox's disk hangs (gateway/unwritten-alarms.ts):
 * a QoS 1 redelivery joins its first copy; a different event under a reused id does not; a
 * device's alarms reach the server one after another, so a cancel never overtakes its press.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { UnwrittenAlarms } from '../../gateway/unwritten-alarms.js'
import { createGatewayMetrics } from '../../gateway/metrics.js'
import type { OutboxEntry } from '../../gateway/outbox/outbox.js'
import type { GatewayEvent, IngestResult } from '../../protocol/index.js'

const event = (deviceId: string, seq: number, type: GatewayEvent['event']['type'], ts?: number): GatewayEvent =>
  ({ eventId: `${deviceId}/-/${seq}`, deviceId, gatewayId: 'gw-1', receivedAt: Date.now(), skewed: false, event: { seq, type, ...(ts === undefined ? {} : { ts }) } })

/** A server that answers each request when the test says so, and records the order it got them. */
function slowServer () {
  const posted: string[] = []
  const waiting: Array<() => void> = []
  const answered: string[] = []
  const alarms = new UnwrittenAlarms({
    post: (entry: OutboxEntry) => new Promise<IngestResult[]>((resolve) => {
      posted.push(`${entry.eventId} ${entry.type}`)
      waiting.push(() => resolve([{ eventId: entry.eventId, status: 'stored' }]))
    }),
    acknowledge: (entries) => { answered.push(...entries.map((e) => `${e.eventId} ${e.type}`)) },
    writeWaitMs: () => 5_000,
    stopping: new AbortController().signal,
    metrics: createGatewayMetrics(),
    log: pino({ level: 'silent' })
  })
  const answerNext = async () => { waiting.shift()!(); await sleep(5) }
  return { alarms, posted, answered, answerNext }
}

describe('alarms sent from memory', () => {
  it('sends a redelivery once, with its first copy, and a different event under the same id apart', async () => {
    const server = slowServer()
    const signal = new AbortController().signal
    const press = event('btn-1', 4, 'press', 1_000)
    const first = server.alarms.send(press, signal)
    // The device redelivers it (QoS 1, same payload, a new receive time): it joins.
    const redelivery = server.alarms.send({ ...press, receivedAt: press.receivedAt + 50 }, signal)
    // The board reset its count: a cancel under the same id is another event.
    const reused = server.alarms.send(event('btn-1', 4, 'cancel', 9_000), signal)
    // So is a press under the same id with another device clock reading.
    const later = server.alarms.send(event('btn-1', 4, 'press', 61_000), signal)
    await sleep(5)
    expect(server.posted).toEqual(['btn-1/-/4 press'])
    await server.answerNext()
    await Promise.all([first, redelivery])
    await server.answerNext()
    await server.answerNext()
    await Promise.all([reused, later])
    expect(server.posted).toEqual(['btn-1/-/4 press', 'btn-1/-/4 cancel', 'btn-1/-/4 press'])
    expect(server.answered).toEqual(server.posted)
  })

  it('sends a device\'s alarms one after another, other devices\' beside them', async () => {
    const server = slowServer()
    const signal = new AbortController().signal
    const sends = [
      server.alarms.send(event('shop-1', 1, 'press'), signal),
      server.alarms.send(event('shop-1', 2, 'cancel'), signal),
      server.alarms.send(event('shop-2', 1, 'press'), signal)
    ]
    await sleep(5)
    // The cancel waits for its press; the other shop's press does not.
    expect(server.posted).toEqual(['shop-1/-/1 press', 'shop-2/-/1 press'])
    await server.answerNext()
    expect(server.posted).toEqual(['shop-1/-/1 press', 'shop-2/-/1 press', 'shop-1/-/2 cancel'])
    await server.answerNext()
    await server.answerNext()
    await Promise.all(sends)
    expect(server.answered).toEqual(['shop-1/-/1 press', 'shop-2/-/1 press', 'shop-1/-/2 cancel'])
  })
})
