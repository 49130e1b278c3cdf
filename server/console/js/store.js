/**
 * What the console knows: active alerts, devices, resident reports and the selected alert's
 * detail. Loaded in full whenever the live stream (re)opens, then kept current one alert or
 * device at a time from stream events. Views read `state` and re-render on `subscribe`.
 *
 * Reads of one alert can land in any order (each stream event starts one; a reload's lists
 * come in beside them): an answer older than what is held is dropped (`alert-versions.js`),
 * and a read that failed is retried until it succeeds (`retry.js`). Until then `state.sync`
 * says the data is incomplete, and the header does not show "live".
 */
import { ApiError } from './api.js'
import { createAlertVersions } from './alert-versions.js'
import { createRetrier } from './retry.js'
import { timelineEvents } from './timeline-events.js'

export const ACTIVE_STATES = ['open', 'acknowledged', 'dispatched']
/** The most alerts one list request returns (the API's own maximum). */
export const ALERT_PAGE = 1000
/** Devices per request (the API's own maximum). */
const DEVICE_PAGE = 1000
/** Asked for one by one when a state's list is full (see `activeAlerts`). */
const ALERT_KINDS = ['panic', 'tamper', 'device_offline', 'battery_low', 'power_lost']
/**
 * Alert reads waiting for their retry at most; past it, one reload's retry takes their place
 * (hundreds of alerts failing at once is a struggling server: one full read, not hundreds).
 */
export const MAX_ALERT_RETRIES = 20
/** Below this battery level (percent) a device is listed as low. */
export const LOW_BATTERY = 20

/** An alert counts as escalated once the server says so (escalation fields may be absent). */
const escalationCount = (/** @type {any} */ a) =>
  Array.isArray(a.escalations) ? a.escalations.length : Number(a.escalations ?? a.escalationLevel ?? 0) || 0
export const isEscalated = (/** @type {any} */ a) => Boolean(a.escalatedAt) || escalationCount(a) > 0
const escalationMark = (/** @type {any} */ a) => `${a.escalatedAt ?? ''}|${escalationCount(a)}`

/**
 * What the header shows: the stream's state, except that a live stream over data known to be
 * incomplete (a read or reload failed and waits for its retry) is `degraded`, and one whose
 * first load is still on its way is `connecting`: green only when the list can be trusted.
 * @returns {'connecting' | 'live' | 'degraded' | 'down'}
 */
export function shownConnection (/** @type {{ connection: string, sync: string }} */ state) {
  if (state.connection !== 'live') return /** @type {'connecting' | 'down'} */ (state.connection)
  if (state.sync === 'incomplete') return 'degraded'
  return state.sync === 'loading' ? 'connecting' : 'live'
}

/**
 * Panics waiting for someone first (escalated ones at the top), then other alerts waiting, then
 * the rest; newest first within each. A wide outage's hundreds of device_offline alerts must
 * never push a panic down the list.
 */
export function sortAlerts (/** @type {any[]} */ alerts) {
  const rank = (/** @type {any} */ a) => {
    const open = a.state === 'open'
    const panic = a.kind === 'panic'
    if (open && panic) return isEscalated(a) ? 0 : 1
    if (open) return isEscalated(a) ? 2 : 3
    return panic ? 4 : 5
  }
  return [...alerts].sort((a, b) => rank(a) - rank(b) || Date.parse(b.lastPressAt ?? b.openedAt) - Date.parse(a.lastPressAt ?? a.openedAt))
}

/**
 * @param {(method: string, path: string, body?: unknown) => Promise<any>} api
 * @param {(cue: { kind: 'new' | 'escalated' | 'press', alert: any }) => void} onCue
 */
export function createStore (api, onCue) {
  const state = {
    connection: /** @type {'connecting'|'live'|'down'} */ ('connecting'),
    /** loading: a full load is on its way; incomplete: a read failed and waits for its retry */
    sync: /** @type {'loading'|'complete'|'incomplete'} */ ('loading'),
    loaded: false,
    /** @type {Map<string, any>} */ alerts: new Map(),
    /** @type {Map<string, any>} */ devices: new Map(),
    /** @type {any[] | null} null = the server has no gateways API yet */ gateways: [],
    /** @type {any[] | null} null = the server has no reports API yet */ reports: [],
    reportsFilter: /** @type {'open'|'all'} */ ('open'),
    /** @type {string | null} */ selectedId: null,
    /** @type {{ alert: any, events: any[], gapAfter: string | null } | null} */ detail: null,
    /** @type {string | null} */ loadError: null,
    /** @type {string | null} the selected alert's detail could not be read (retried) */ detailError: null
  }
  /** @type {Set<() => void>} */
  const listeners = new Set()
  let stopped = false
  const changed = () => { if (!stopped) for (const listener of listeners) listener() }
  const versions = createAlertVersions()
  let reloadsRunning = 0
  // A retry that succeeds by its own timer is news too: the header goes back to "live".
  const retrier = createRetrier({ onChange: () => { limitRetries(); updateSync(); changed() } })

  /** Too many alert reads waiting for their retry: one reload's retry instead (MAX_ALERT_RETRIES). */
  function limitRetries () {
    const waitingAlerts = retrier.failing().filter((f) => f.key.startsWith('alert:')).length
    if (waitingAlerts > MAX_ALERT_RETRIES) retrier.replace('alert:', 'reload', reloadTask)
  }

  /**
   * `state.sync` and the errors shown, from the reloads running and the reads failing. The
   * selected alert's detail failing is said in the detail: the list and map are still whole.
   */
  function updateSync () {
    const failing = retrier.failing()
    const message = (/** @type {any} */ error) => String(error?.message ?? error)
    const listFailing = failing.filter((f) => !f.key.startsWith('detail:'))
    const detailFailing = failing.find((f) => f.key === `detail:${state.selectedId}`)
    state.loadError = listFailing.length ? message(listFailing[0]?.error) : null
    state.detailError = detailFailing ? message(detailFailing.error) : null
    state.sync = listFailing.length ? 'incomplete' : reloadsRunning > 0 || !state.loaded ? 'loading' : 'complete'
  }

  /** The selected alert's detail, retried apart from the list's reads (see `updateSync`). */
  const readDetail = (/** @type {string} */ id, /** @type {any} */ known = null) =>
    retrier.run(`detail:${id}`, async () => { if (state.selectedId === id) await loadDetail(id, known) })

  /**
   * Takes an alert read from the server, unless what is held is newer; tells whether it is new
   * or newly escalated (for the cue). A closed alert never comes back, nor is cued again; nor
   * does one a reload found missing, from a read started before (`readAt`: `versions.mark()`
   * taken before the read was sent).
   */
  function put (/** @type {any} */ alert, cue = true, /** @type {number} */ readAt = Infinity) {
    const before = state.alerts.get(alert.id)
    if (!versions.accept(alert, ACTIVE_STATES.includes(alert.state), readAt)) return false
    if (!ACTIVE_STATES.includes(alert.state)) state.alerts.delete(alert.id)
    else state.alerts.set(alert.id, alert)
    if (state.detail?.alert.id === alert.id && !alert.transitions) state.detail.alert = { ...alert, transitions: state.detail.alert.transitions }
    if (!cue || !ACTIVE_STATES.includes(alert.state)) return true
    if (!before && alert.state === 'open') onCue({ kind: isEscalated(alert) ? 'escalated' : 'new', alert })
    else if (before && isEscalated(alert) && escalationMark(before) !== escalationMark(alert)) onCue({ kind: 'escalated', alert })
    else if (before && alert.pressCount > before.pressCount) onCue({ kind: 'press', alert })
    return true
  }

  async function loadReports () {
    try {
      const query = state.reportsFilter === 'open' ? '?state=open&limit=500' : '?limit=500'
      state.reports = await api('GET', `/v1/reports${query}`)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) state.reports = null
      else throw err
    }
  }

  /** The gateways the server watches: a wave of offline devices is often one gateway lost. */
  async function loadGateways () {
    try {
      state.gateways = await api('GET', '/v1/gateways')
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) state.gateways = null
      else throw err
    }
  }

  /**
   * The alerts in one active state. The API lists the newest first, at most ALERT_PAGE: when a
   * wide outage fills that with `device_offline` alerts, an older panic still waiting for
   * someone would fall off the operators' list. So a full list is completed kind by kind.
   */
  async function activeAlerts (/** @type {string} */ alertState) {
    const newest = await api('GET', `/v1/alerts?state=${alertState}&limit=${ALERT_PAGE}`)
    if (newest.length < ALERT_PAGE) return newest
    const byKind = await Promise.all(ALERT_KINDS.map((kind) => api('GET', `/v1/alerts?state=${alertState}&kind=${kind}&limit=${ALERT_PAGE}`)))
    const all = new Map([...newest, ...byKind.flat()].map((/** @type {any} */ a) => [a.id, a]))
    return [...all.values()]
  }

  /** Every device, a page at a time: a ward with more than one page lost the rest from the map. */
  async function allDevices () {
    /** @type {any[]} */
    const devices = []
    for (;;) {
      const after = devices.at(-1)?.id
      const page = await api('GET', `/v1/devices?limit=${DEVICE_PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`)
      devices.push(...page)
      if (page.length < DEVICE_PAGE) return devices
    }
  }

  /** When the reload whose lists were taken last started (`versions.mark()`). */
  let listsTakenAt = 0
  async function reloadAll () {
    // What the lists leave out was closed before they were read, unless a live read put it
    // there since: an alert opened after the lists were read must stay.
    const startedAt = versions.mark()
    const [lists, devices] = await Promise.all([
      Promise.all(ACTIVE_STATES.map(activeAlerts)),
      allDevices(),
      loadReports(),
      loadGateways()
    ])
    // Reloads overlap (one hung, the stream reopened): lists older than those taken already
    // are old news (an alert opened and resolved between the two would come back as new).
    if (startedAt < listsTakenAt) return
    listsTakenAt = startedAt
    const fresh = lists.flat()
    const ids = new Set(fresh.map((a) => a.id))
    for (const id of state.alerts.keys()) {
      if (!ids.has(id) && versions.heldSince(id) < startedAt) { state.alerts.delete(id); versions.forget(id) }
    }
    // The first load after sign-in is no news; later reloads (after a gap) may be.
    for (const alert of fresh) put(alert, state.loaded, startedAt)
    state.devices = new Map(devices.map((/** @type {any} */ d) => [d.id, d]))
    state.loaded = true
    if (state.selectedId) readDetail(state.selectedId)
  }

  /** One alert, read again after a stream event (or an action); the detail too if it is shown. */
  async function readAlert (/** @type {string} */ id) {
    let alert
    // A read started before a reload that found the alert missing (resolved meanwhile) and
    // landing after it is old news: it must not bring the alert back as a new one.
    const readAt = versions.mark()
    try {
      alert = await api('GET', `/v1/alerts/${encodeURIComponent(id)}`)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err
      state.alerts.delete(id)
      versions.gone(id)
      return
    }
    put(alert, true, readAt)
    if (state.selectedId === id) await readDetail(id, alert)
  }

  async function readDevice (/** @type {string} */ id) {
    try {
      const device = await api('GET', `/v1/devices/${encodeURIComponent(id)}`)
      if (device.revokedAt) state.devices.delete(id)
      else state.devices.set(id, device)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) state.devices.delete(id)
      else throw err
    }
  }

  /** The alert with its transitions, and what its device sent while it was open. */
  async function loadDetail (/** @type {string} */ id, /** @type {any} */ known = null) {
    const readAt = versions.mark()
    const alert = known?.transitions ? known : await api('GET', `/v1/alerts/${encodeURIComponent(id)}`)
    // The detail's read is a read of the alert like any other: the list takes it too (or it
    // is older than what the list holds, and a newer read is on its way).
    if (!known) put(alert, true, readAt)
    const { events, gapAfter } = await timelineEvents(api, alert)
    if (state.selectedId !== id) return
    const shown = state.detail?.alert.id === id ? state.detail.alert : null
    if (shown && versions.isOlder(alert, shown)) return
    state.detail = { alert, events, gapAfter }
  }

  /**
   * The full reload, as the retrier runs it. Once it succeeds, the alert and device reads that
   * failed before it started need no retry: its lists are newer than what they would read.
   */
  async function reloadTask () {
    const since = retrier.lastRun()
    reloadsRunning++
    updateSync()
    changed()
    try { await reloadAll() } finally { reloadsRunning-- }
    retrier.cancelStartedBefore(['alert:', 'device:'], since)
  }

  /**
   * Events for one alert (or device) whose reads are on their way are collapsed: at most two
   * reads of it run at once, the one on its way and one started after the latest event (not
   * held behind the first: that one may land late, and answer with what a newer read would
   * already have corrected). Events coming while two run are served by one more read, started
   * once one of them is over, however many they are. Resolves once a read started after this
   * event is over.
   * @type {Map<string, { running: number, waiting: (() => void)[] }>}
   */
  const reading = new Map()
  function readCollapsed (/** @type {string} */ key, /** @type {() => Promise<void>} */ read) {
    const current = reading.get(key)
    if (current && current.running >= 2) return new Promise((resolve) => { current.waiting.push(() => resolve(undefined)) })
    const entry = current ?? { running: 0, waiting: /** @type {(() => void)[]} */ ([]) }
    reading.set(key, entry)
    entry.running++
    return (async () => {
      /** @type {(() => void)[]} */
      let served = []
      try {
        for (;;) {
          await retrier.run(key, read)
          changed()
          for (const resolve of served) resolve()
          served = entry.waiting.splice(0)
          if (!served.length) break
          if (stopped) { for (const resolve of served) resolve(); break }
        }
      } finally {
        if (--entry.running === 0) reading.delete(key)
      }
    })()
  }

  return {
    state,
    subscribe (/** @type {() => void} */ listener) { listeners.add(listener); return () => listeners.delete(listener) },
    changed,

    /**
     * Full reload, retried until it succeeds. Stream events are read meanwhile, not held back
     * behind it (one request of it that hung held every later panic back).
     */
    reload () {
      return retrier.run('reload', reloadTask).finally(changed)
    },

    alertChanged (/** @type {string} */ id) {
      return readCollapsed(`alert:${id}`, () => readAlert(id))
    },

    /** Marks the start of a request whose answer is an alert (for `acted`). */
    markRead: () => versions.mark(),

    /**
     * The alert as this console's own action left it (the action's answer, with its new
     * version): shown at once, so the next action is made on it, not on the version before
     * (a resolve right after its own acknowledge was refused as if another desk had acted).
     */
    acted (/** @type {any} */ alert, /** @type {number} */ readAt) {
      put(alert, false, readAt)
      // The detail keeps its timeline until the read that follows brings the new transition.
      if (state.detail?.alert.id === alert.id && !versions.isOlder(alert, state.detail.alert)) state.detail = { ...state.detail, alert }
      changed()
    },

    deviceChanged (/** @type {string} */ id) {
      return readCollapsed(`device:${id}`, () => readDevice(id))
    },

    async refreshDevices () {
      const [devices] = await Promise.all([allDevices(), loadGateways()])
      state.devices = new Map(devices.map((/** @type {any} */ d) => [d.id, d]))
      changed()
    },

    async refreshReports () {
      await loadReports().catch((err) => { state.loadError = err.message })
      changed()
    },

    async select (/** @type {string | null} */ id) {
      if (state.selectedId) retrier.cancel(`detail:${state.selectedId}`)
      state.selectedId = id
      state.detail = null
      updateSync()
      changed()
      if (id) {
        await readDetail(id)
        changed()
      }
    },

    /** Stops the reads and their retries, and tells the listeners nothing more (the console signs out). */
    stop () { stopped = true; retrier.stop() }
  }
}
