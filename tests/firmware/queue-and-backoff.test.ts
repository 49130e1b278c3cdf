/** The offline queue's bound and the reconnect delays: pure logic, no network. */
import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OutboundQueue } from '../../firmware-sim/device/outbound-queue.js'
import { reconnectDelay } from '../../firmware-sim/device/backoff.js'
import { SeqStore } from '../../firmware-sim/device/seq-store.js'
import type { WireEvent } from '../../firmware-sim/device/wire-event.js'

const ev = (seq: number, type: WireEvent['type']): WireEvent => ({ seq, type })

describe('offline queue', () => {
  it('keeps order, and when full drops the oldest routine event before any alarm', () => {
    const queue = new OutboundQueue(3)
    expect(queue.push(ev(1, 'press'))).toBeUndefined()
    expect(queue.push(ev(2, 'test'))).toBeUndefined()
    expect(queue.push(ev(3, 'press'))).toBeUndefined()
    expect(queue.push(ev(4, 'cancel'))).toEqual(ev(2, 'test'))
    // Only alarms left: the new event is the one dropped; the queued presses carry the alarm.
    expect(queue.push(ev(5, 'press'))).toEqual(ev(5, 'press'))
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual([ev(1, 'press'), ev(3, 'press'), ev(4, 'cancel'), undefined])
  })
})

describe('reconnect backoff', () => {
  it('draws uniformly below a ceiling that doubles up to the cap (full jitter)', () => {
    const options = { baseMs: 1000, maxMs: 60_000 }
    expect([0, 1, 2, 3, 10, 100].map((a) => reconnectDelay(a, options, () => 0.999999))).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000])
    expect(reconnectDelay(10, options, () => 0)).toBe(0)
    expect(reconnectDelay(10, options, () => 0.5)).toBe(30_000)
  })
})

describe('seq store', () => {
  it('reserves seqs in blocks, continues after a restart, and starts a new boot when the file is corrupt', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-seq-'))
    const file = join(dir, 'btn-1.json')
    try {
      const first = new SeqStore(file, 4)
      expect([first.next(), first.next(), first.next()]).toEqual([0, 1, 2])
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ boot: first.boot, reserved: 4 })
      const second = new SeqStore(file, 4)
      expect(second.boot).toBe(first.boot)
      expect(second.next()).toBe(4)
      writeFileSync(file, '{"boot": 12')
      const third = new SeqStore(file, 4)
      expect(third.resetReason).toBe('corrupt')
      expect(third.boot).not.toBe(first.boot)
      expect(third.next()).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
