/**
 * The console's store (server/console/js/store.js, the module the page runs) against a scripted
 * API, with fake timers where time matters: a console signed out stops reading, a read that
 * lands after a reload never brings a resolved alert back, and a struggling server is not sent
 * an outage's worth of retries in waves.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'

const storeModule: string = '../../server/console/js/store.js'
const apiModule: string = '../../server/console/js/api.js'
const { createStore, MAX_ALERT_RETRIES = 20 } = await import(storeModule)
const { ApiError } = await import(apiModule)

const alert = (id: string, more: Record<string, unknown> = {}) => ({
  id, kind: 'panic', state: 'open', deviceId: `d-${id}`, pressCount: 1, escalationLevel: 0,
  openedAt: new Date(0).toISOString(), lastPressAt: new Date(0).toISOString(), version: 1, ...more
})
/** An API whose lists are `lists.open` (the other states empty), and whose other answers `read` gives. */
const scripted = (lists: { open: any[] }, read: (path: string) => Promise<any>) => async (_method: string, path: string) => {
  if (path.startsWith('/v1/alerts?')) return path.includes('state=open') ? lists.open : []
  if (path.startsWith('/v1/devices?') || path.startsWith('/v1/reports') || path.startsWith('/v1/gateways')) return []
  return read(path)
}

afterEach(() => { vi.useRealTimers() })

describe('console store: signed out', () => {
  it('reads nothing more, retries nothing and tells no one once a 401 signed the console out', async () => {
    vi.useFakeTimers()
    let calls = 0
    const store = createStore(async () => {
      calls++
      store.stop() // as main.js: api.js signs out (revoked(): store.stop()) before throwing the 401
      throw new ApiError(401, 'UNAUTHORIZED', 'missing or invalid bearer token')
    }, () => {})
    const listener = vi.fn()
    store.subscribe(listener)
    store.alertChanged('a1')
    store.alertChanged('a2')
    await vi.advanceTimersByTimeAsync(10 * 60_000)
    expect(calls).toBe(1)
    expect(listener).not.toHaveBeenCalled()
  })
})

describe('console store: reads crossing a reload', () => {
  it('does not take back, nor cue as new, an alert a reload found resolved when a read started before lands after', async () => {
    const lists = { open: [alert('X')] }
    let answer!: (a: any) => void
    const cues: string[] = []
    const store = createStore(scripted(lists, async (path) => {
      if (path === '/v1/alerts/X') return new Promise((resolve) => { answer = resolve })
      throw new Error(`unexpected ${path}`)
    }), (cue: any) => cues.push(`${cue.kind}:${cue.alert.id}`))
    await store.reload()
    const reading = store.alertChanged('X') // a second press: its read is slow
    lists.open = [] // the stream drops; X is resolved meanwhile; the stream reopens: a reload
    await store.reload()
    expect(store.state.alerts.has('X')).toBe(false)
    answer(alert('X', { pressCount: 2, version: 2 })) // read before the resolution, landing last
    await reading
    expect(store.state.alerts.has('X'), 'the resolved panic came back').toBe(false)
    expect(cues).toEqual([])
    // A read started after the reload is taken (a list cut short leaves active alerts out too).
    const again = store.alertChanged('X')
    answer(alert('X', { pressCount: 3, version: 3 }))
    await again
    expect(store.state.alerts.get('X')?.pressCount).toBe(3)
  })

  it('does not take back an alert from a reload that started before another one found it missing', async () => {
    const lists = { open: [alert('X')] }
    const cues: string[] = []
    let openLists = 0
    let hold!: () => void
    const store = createStore(async (method: string, path: string) => {
      if (path.startsWith('/v1/alerts?state=open') && ++openLists === 2) {
        const open = lists.open
        return new Promise((resolve) => { hold = () => resolve(open) })
      }
      return scripted(lists, async (p) => { throw new Error(`unexpected ${p}`) })(method, path)
    }, (cue: any) => cues.push(`${cue.kind}:${cue.alert.id}`))
    await store.reload() // X open
    const first = store.reload() // a reconnect's: its open list hangs, with X in it
    lists.open = []
    await store.reload() // the next reconnect's: X resolved meanwhile
    expect(store.state.alerts.has('X')).toBe(false)
    hold()
    await first
    expect(store.state.alerts.has('X'), 'the older reload brought the resolved panic back').toBe(false)
    expect(cues).toEqual([])
  })

  it('does not apply a reload\'s lists older than those of one already applied', async () => {
    const lists = { open: [] as any[] }
    const cues: string[] = []
    let openLists = 0
    let hold!: () => void
    const store = createStore(async (method: string, path: string) => {
      if (path.startsWith('/v1/alerts?state=open') && ++openLists === 2) {
        return new Promise((resolve) => { hold = () => resolve([alert('Y')]) })
      }
      return scripted(lists, async (p) => { throw new Error(`unexpected ${p}`) })(method, path)
    }, (cue: any) => cues.push(`${cue.kind}:${cue.alert.id}`))
    await store.reload()
    const first = store.reload() // hangs: Y open when it was read
    await store.reload() // Y opened and was resolved since: not listed
    hold()
    await first
    expect(store.state.alerts.has('Y')).toBe(false)
    expect(cues).toEqual([])
  })
})

describe('console store: a struggling server', () => {
  it('keeps at most MAX_ALERT_RETRIES alert reads waiting, spreads their retries, and puts one reload retry in place of the rest', async () => {
    vi.useFakeTimers()
    const times: number[] = []
    const paths: string[] = []
    const store = createStore(async (_method: string, path: string) => {
      times.push(Date.now())
      paths.push(path)
      throw new ApiError(503, 'UNAVAILABLE', 'busy')
    }, () => {})
    const N = 500
    for (let i = 0; i < N; i++) store.alertChanged(`a${i}`)
    await vi.advanceTimersByTimeAsync(0)
    expect(times.length).toBe(N) // the events' own reads
    const failing = store.state.loadError
    expect(failing).not.toBeNull()
    const t0 = times[0]!
    times.length = 0
    paths.length = 0
    await vi.advanceTimersByTimeAsync(10 * 60_000)
    const perSecond = new Map<number, number>()
    for (const t of times) perSecond.set(Math.floor((t - t0) / 1000), (perSecond.get(Math.floor((t - t0) / 1000)) ?? 0) + 1)
    const alertReads = new Set(paths.filter((p) => p.startsWith('/v1/alerts/')))
    expect(alertReads.size).toBeLessThanOrEqual(MAX_ALERT_RETRIES)
    expect(paths.some((p) => p.startsWith('/v1/alerts?state=open')), 'a reload retry in their place').toBe(true)
    expect(Math.max(...perSecond.values())).toBeLessThan(50)
    expect(times.length).toBeLessThan(1500)
    expect(store.state.sync).toBe('incomplete')
    store.stop()
  })

  it('drops the alert retries started before a reload that succeeded', async () => {
    vi.useFakeTimers()
    let down = true
    const reads: string[] = []
    const store = createStore(scripted({ open: [] }, async (path) => {
      reads.push(path)
      if (down) throw new ApiError(502, 'HTTP', 'bad gateway')
      return alert(path.split('/').pop()!)
    }), () => {})
    for (const id of ['a', 'b', 'c']) await store.alertChanged(id)
    expect(store.state.sync).toBe('incomplete')
    down = false
    await store.reload()
    expect(store.state.sync).toBe('complete')
    reads.length = 0
    await vi.advanceTimersByTimeAsync(5 * 60_000)
    expect(reads).toEqual([])
    store.stop()
  })

  it('collapses the events for an alert whose reads are on their way: one read on its way, one after the latest event', async () => {
    const answers: ((a: any) => void)[] = []
    let reads = 0
    const store = createStore(scripted({ open: [] }, async () => {
      reads++
      return new Promise((resolve) => answers.push(resolve))
    }), () => {})
    const first = store.alertChanged('X')
    const second = store.alertChanged('X') // not held behind the first (it may land late)
    expect(reads).toBe(2)
    const more = Array.from({ length: 10 }, () => store.alertChanged('X'))
    expect(reads).toBe(2)
    answers.shift()!(alert('X'))
    await vi.waitFor(() => expect(reads).toBe(3)) // one read for the ten events
    answers.shift()!(alert('X', { pressCount: 2, version: 2 }))
    answers.shift()!(alert('X', { pressCount: 12, version: 12 }))
    await Promise.all([first, second, ...more])
    expect(reads).toBe(3)
    expect(store.state.alerts.get('X')?.pressCount).toBe(12)
  })
})
