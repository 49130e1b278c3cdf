/** The offline queue's bound and the reconnect delays: pure logic, no network. */
import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OutboundQueue } from '../../firmware-sim/device/outbound-queue.js'
import { alarmReconnectDelay, reconnectDelay } from '../../firmware-sim/device/backoff.js'
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

  it('while an alarm waits: the same draw under a 5 s ceiling, never sooner than 1 s after the last attempt began', () => {
    const top = { baseMs: 1000, maxMs: 60_000, random: () => 0.999999 }
    expect([0, 1, 2, 3, 10].map((a) => alarmReconnectDelay(a, top, 10_000))).toEqual([1000, 2000, 4000, 5000, 5000])
    const bottom = { baseMs: 1000, maxMs: 60_000, random: () => 0 }
    expect(alarmReconnectDelay(5, bottom, 300)).toBe(700) // the floor
    expect(alarmReconnectDelay(5, bottom, 5000)).toBe(0)
    expect(alarmReconnectDelay(5, { ...top, maxMs: 2000 }, 10_000)).toBe(2000) // never above the routine ceiling
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

  it('a block that cannot be saved (a full or failing disk) does not stop the device: it counts on in memory under a fresh boot, and no restart reuses those seqs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-seq-'))
    const stateDir = join(dir, 'state')
    const file = join(stateDir, 'btn-1.json')
    const unsaved: Array<{ reason: string, boot: string }> = []
    try {
      const store = new SeqStore(file, 4, (reason, boot) => unsaved.push({ reason, boot }))
      expect([store.next(), store.next(), store.next(), store.next()]).toEqual([0, 1, 2, 3])
      const savedBoot = store.boot

      // The disk fails: nothing can be written where the seq file lives (a plain file stands
      // in for its directory: this works even for root, whom permissions do not stop).
      renameSync(stateDir, join(dir, 'away'))
      writeFileSync(stateDir, 'not a directory')
      expect(store.next()).toBe(4)
      const memoryBoot = store.boot
      expect(memoryBoot).not.toBe(savedBoot)
      expect(unsaved).toEqual([{ reason: expect.any(String), boot: memoryBoot }])
      expect([store.next(), store.next(), store.next(), store.next()]).toEqual([5, 6, 7, 8])
      expect(store.boot).toBe(memoryBoot) // still failing: told again, same boot
      expect(unsaved).toHaveLength(2)

      // Restarted now, the device would read the saved boot and go on from 4: (savedBoot, 4)
      // was never sent, the events since went out as (memoryBoot, 4…).
      rmSync(stateDir)
      renameSync(join(dir, 'away'), stateDir)
      const restarted = new SeqStore(file, 4)
      expect(restarted.boot).toBe(savedBoot)
      expect(restarted.last).toBe(3)

      // The disk is back: the next block is saved, under the boot in use.
      expect([store.next(), store.next(), store.next(), store.next()]).toEqual([9, 10, 11, 12])
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ boot: memoryBoot, reserved: 16 })
      expect(unsaved).toHaveLength(2)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
