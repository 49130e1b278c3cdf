/**
 * The durable write of an alarm while the outbox's disk hangs (gateway/pipeline/persist.ts):
 * the alarm goes to the server from memory, and the PUBACK waits for whichever of the two
 * makes it durable. When neither can (the send stopped by a shutdown, the write failed), the
 * step must fail, as a failed write does, instead of never answering.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { createPersist, type UnwrittenAlarms } from '../../gateway/pipeline/persist.js'
import type { Outbox } from '../../gateway/outbox/outbox.js'
import type { PublishContext } from '../../gateway/pipeline/context.js'
import type { GatewayEvent } from '../../protocol/index.js'

const press: GatewayEvent = { eventId: 'shop-9/-/1', deviceId: 'shop-9', gatewayId: 'gw-1', receivedAt: Date.now(), skewed: false, event: { seq: 1, type: 'press' } }

/** An outbox whose write hangs until the test ends it. */
function hangingOutbox () {
  let fail!: (err: Error) => void
  const outbox = { append: () => new Promise((_resolve, reject) => { fail = reject }), writeWaitMs: () => 60_000 } as unknown as Outbox
  return { outbox, fail: (err: Error) => fail(err) }
}

/** Sends that the server answers when told to, or that a stop aborts. */
function server () {
  const stopping = new AbortController()
  let answer!: () => void
  const sent: GatewayEvent[] = []
  const unwritten: UnwrittenAlarms = {
    afterMs: 10,
    send: (record, signal) => new Promise<void>((resolve, reject) => {
      sent.push(record)
      answer = resolve
      const until = AbortSignal.any([signal, stopping.signal])
      until.addEventListener('abort', () => reject(until.reason))
    })
  }
  return { unwritten, sent, stop: () => stopping.abort(), answer: () => answer() }
}

const persisting = (outbox: Outbox, unwritten: UnwrittenAlarms) => createPersist(outbox, unwritten)({ record: press } as PublishContext) as Promise<unknown>

describe('persist: an alarm while the outbox hangs', () => {
  it('is stored once the server has it, even when the write fails afterwards', async () => {
    const { outbox, fail } = hangingOutbox()
    const srv = server()
    const step = persisting(outbox, srv.unwritten)
    await sleep(40)
    expect(srv.sent).toEqual([press])
    fail(new Error('disk failed'))
    srv.answer()
    await expect(step).resolves.toEqual({ kind: 'stored' })
  })

  it('fails when the gateway stops its send and then the write fails', async () => {
    const { outbox, fail } = hangingOutbox()
    const srv = server()
    const step = persisting(outbox, srv.unwritten)
    step.catch(() => {})
    await sleep(40)
    srv.stop()
    await sleep(5)
    fail(new Error('disk failed'))
    await expect(step).rejects.toThrow('disk failed')
  })

  it('fails when the write fails and then the gateway stops its send', async () => {
    const { outbox, fail } = hangingOutbox()
    const srv = server()
    const step = persisting(outbox, srv.unwritten)
    step.catch(() => {})
    await sleep(40)
    fail(new Error('disk failed'))
    await sleep(5)
    srv.stop()
    await expect(step).rejects.toThrow('disk failed')
  })
})
