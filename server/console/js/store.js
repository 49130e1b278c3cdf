/**
 * What the console knows: active alerts, devices, resident reports and the selected alert's
 * detail. Loaded in full whenever the live stream (re)opens, then kept current one alert or
 * device at a time from stream events. Views read `state` and re-render on `subscribe`.
 */
import { ApiError } from './api.js'

export const ACTIVE_STATES = ['open', 'acknowledged', 'dispatched']
/** The most alerts one list request returns (the API's own maximum). */
export const ALERT_PAGE = 1000
/** Devices per request (the API's own maximum). */
const DEVICE_PAGE = 1000
/** Asked for one by one when a state's list is full (see `activeAlerts`). */
const ALERT_KINDS = ['panic', 'tamper', 'device_offline', 'battery_low', 'power_lost']
/** Below this battery level (percent) a device is listed as low. */
export const LOW_BATTERY = 20

/** An alert counts as escalated once the server says so (escalation fields may be absent). */
const escalationCount = (/** @type {any} */ a) =>
  Array.isArray(a.escalations) ? a.escalations.length : Number(a.escalations ?? a.escalationLevel ?? 0) || 0
export const isEscalated = (/** @type {any} */ a) => Boolean(a.escalatedAt) || escalationCount(a) > 0
const escalationMark = (/** @type {any} */ a) => `${a.escalatedAt ?? ''}|${escalationCount(a)}`

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
    loaded: false,
    /** @type {Map<string, any>} */ alerts: new Map(),
    /** @type {Map<string, any>} */ devices: new Map(),
    /** @type {any[] | null} null = the server has no gateways API yet */ gateways: [],
    /** @type {any[] | null} null = the server has no reports API yet */ reports: [],
    reportsFilter: /** @type {'open'|'all'} */ ('open'),
    /** @type {string | null} */ selectedId: null,
    /** @type {{ alert: any, events: any[] } | null} */ detail: null,
    /** @type {string | null} */ loadError: null
  }
  /** @type {Set<() => void>} */
  const listeners = new Set()
  const changed = () => { for (const listener of listeners) listener() }
  /** @type {Promise<void>} */
  let reloading = Promise.resolve()

  /** Remembers an alert; tells whether it is new or newly escalated (for the cue). */
  function put (/** @type {any} */ alert, cue = true) {
    const before = state.alerts.get(alert.id)
    if (!ACTIVE_STATES.includes(alert.state)) state.alerts.delete(alert.id)
    else state.alerts.set(alert.id, alert)
    if (!cue || !ACTIVE_STATES.includes(alert.state)) return
    if (!before && alert.state === 'open') onCue({ kind: isEscalated(alert) ? 'escalated' : 'new', alert })
    else if (before && isEscalated(alert) && escalationMark(before) !== escalationMark(alert)) onCue({ kind: 'escalated', alert })
    else if (before && alert.pressCount > before.pressCount) onCue({ kind: 'press', alert })
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

  async function reloadAll () {
    const [lists, devices] = await Promise.all([
      Promise.all(ACTIVE_STATES.map(activeAlerts)),
      allDevices(),
      loadReports(),
      loadGateways()
    ])
    const fresh = lists.flat()
    const ids = new Set(fresh.map((a) => a.id))
    for (const id of state.alerts.keys()) if (!ids.has(id)) state.alerts.delete(id)
    // The first load after sign-in is no news; later reloads (after a gap) may be.
    for (const alert of fresh) put(alert, state.loaded)
    state.devices = new Map(devices.map((/** @type {any} */ d) => [d.id, d]))
    state.loaded = true
    state.loadError = null
  }

  return {
    state,
    subscribe (/** @type {() => void} */ listener) { listeners.add(listener); return () => listeners.delete(listener) },
    changed,

    /** Full reload; stream events arriving meanwhile wait for it, so nothing older wins. */
    reload () {
      reloading = reloadAll()
        .then(() => state.selectedId ? loadDetail(state.selectedId) : undefined)
        .catch((err) => { state.loadError = err.message })
        .finally(changed)
      return reloading
    },

    async alertChanged (/** @type {string} */ id) {
      await reloading
      try {
        const alert = await api('GET', `/v1/alerts/${encodeURIComponent(id)}`)
        put(alert)
        if (state.selectedId === id) await loadDetail(id, alert)
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) state.loadError = String(err.message)
      }
      changed()
    },

    async deviceChanged (/** @type {string} */ id) {
      await reloading
      try {
        const device = await api('GET', `/v1/devices/${encodeURIComponent(id)}`)
        if (device.revokedAt) state.devices.delete(id)
        else state.devices.set(id, device)
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) state.devices.delete(id)
      }
      changed()
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
      state.selectedId = id
      state.detail = null
      changed()
      if (id) {
        await loadDetail(id).catch((err) => { state.loadError = err.message })
        changed()
      }
    }
  }

  /** The alert with its transitions, and what its device sent while it was open. */
  async function loadDetail (/** @type {string} */ id, /** @type {any} */ known = null) {
    const alert = known?.transitions ? known : await api('GET', `/v1/alerts/${encodeURIComponent(id)}`)
    const end = alert.resolvedAt ?? alert.cancelledAt
    // A little before the alert opened: the press that opened it carries the same instant.
    const from = new Date(Date.parse(alert.openedAt) - 1000).toISOString()
    const query = new URLSearchParams({ deviceId: alert.deviceId, from, limit: '500' })
    if (end) query.set('to', new Date(Date.parse(end) + 1000).toISOString())
    const events = await api('GET', `/v1/events?${query}`)
    if (state.selectedId === id) state.detail = { alert, events: events.filter((/** @type {any} */ e) => e.type !== 'heartbeat') }
  }
}
