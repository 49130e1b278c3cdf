/**
 * Step 5: the durable write. Only when it resolves does aedes send the PUBACK.
 *
 * Durable means in the outbox, or in the server's database. While the outbox's disk hangs
 * (its write in flight has waited `afterMs`: an SD card wearing out, a failing drive), an
 * alarm that has waited as long is sent to the server from memory, the write going on; once
 * the server has stored it, it is as durable as the outbox would have made it, and the device
 * hears its PUBACK and `received` then. The write, whenever it ends, changes nothing: the
 * server answers its copy `duplicate`. Routine events wait for the disk. A machine merely
 * busy (commits late because the CPU is, not the disk) sends nothing this way: the writes in
 * flight there are each short.
 */
import type { GatewayEvent } from '../../protocol/index.js'
import type { AppendResult, Outbox } from '../outbox/outbox.js'
import { laneOf } from '../outbox/store.js'
import type { Step } from './context.js'

export interface UnwrittenAlarms {
  /** How long an alarm's outbox write may take before the alarm goes to the server without it, ms. */
  afterMs: number
  /** Sends the alarm to the server; resolves once the server has answered for it, rejects only when aborted. */
  send (record: GatewayEvent, signal: AbortSignal): Promise<void>
}

export function createPersist (outbox: Outbox, unwritten?: UnwrittenAlarms): Step {
  return async (ctx) => {
    const record = ctx.record!
    const appending = outbox.append(record)
    const result = unwritten && laneOf(record.event.type) === 'alarm' ? await durable(appending, record, outbox, unwritten) : await appending
    if (result === 'stored') return { kind: 'stored' }
    // Full outbox, routine event: see the policy in outbox.ts.
    return { kind: 'shed', reason: 'outbox_full', answer: record.event.type !== 'heartbeat' }
  }
}

/** The outbox's answer, or the server's once the outbox's disk hangs. */
function durable (appending: Promise<AppendResult>, record: GatewayEvent, outbox: Outbox, unwritten: UnwrittenAlarms): Promise<AppendResult> {
  return new Promise((resolve, reject) => {
    const written = new AbortController()
    let sent = false
    let sendStopped = false
    let writeFailed: Error | undefined
    const check = () => {
      if (outbox.writeWaitMs() < unwritten.afterMs) {
        timer = setTimeout(check, unwritten.afterMs / 4)
        return
      }
      sent = true
      // Aborted: the outbox answered first, or the gateway is stopping. Stopping, and the write
      // failed too, the alarm is durable nowhere: the PUBACK is refused, as for a failed write.
      unwritten.send(record, written.signal).then(() => resolve('stored'), () => {
        sendStopped = true
        if (writeFailed) reject(writeFailed)
      })
    }
    let timer = setTimeout(check, unwritten.afterMs)
    appending.then((result) => {
      clearTimeout(timer)
      written.abort()
      resolve(result)
    }, (err: Error) => {
      clearTimeout(timer)
      writeFailed = err
      // Once on its way to the server, the alarm's fate is the server's answer: a disk that
      // failed after hanging does not take it back (unless the send was stopped).
      if (!sent || sendStopped) reject(err)
    })
  })
}
