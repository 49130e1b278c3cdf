/**
 * The operator console: sign-in, then the live views. Wires the store (what we know), the live
 * stream (what changes), the cues (sound and banner) and the views (lit-html templates).
 */
import { render } from '/vendor/lit-html/lit-html.js'
import { setLanguage, t } from './i18n.js'
import { ApiError, checkToken, createApi } from './api.js'
import { forgetToken, keepToken, storedToken, takeFragmentToken } from './session.js'
import { openLiveStream } from './live.js'
import { createStore } from './store.js'
import { audioReady, beep, isMuted, prepareAudio, setMuted, unlockAudio } from './sound.js'
import { headerView } from './views/header.js'
import { alertListView } from './views/alert-list.js'
import { alertDetailView } from './views/alert-detail.js'
import { createMap } from './views/map.js'
import { reportsView } from './views/reports.js'
import { announceView } from './views/announce.js'
import { fleetView } from './views/fleet.js'
import { signinView } from './views/signin.js'

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))
const REMINDER_MS = 30_000
const CUE_MS = 15_000

/** The map needs its settings before it is drawn; without them it still works, without tiles. */
async function loadConfig () {
  try {
    const response = await fetch('/console/config', { cache: 'no-store' })
    if (response.ok) return await response.json()
  } catch {}
  return { tileUrl: null, tileAttribution: '', mapCenter: [10.8231, 106.6297, 13] }
}

/** Human text for a failed API call. */
function errorText (/** @type {unknown} */ err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('error.network')
    if (err.status === 403) return t('error.forbidden')
    if (err.status === 404 && err.code === 'NOT_FOUND' && err.message.startsWith('no route')) return t('error.unavailable')
    return t('error.generic', { message: err.message })
  }
  return t('error.generic', { message: String(err) })
}

// ---- sign-in ----------------------------------------------------------------------------

const signin = { busy: false, error: /** @type {string | null} */ (null) }

function showSignin (/** @type {string | null} */ error = null) {
  signin.error = error
  $('console').hidden = true
  $('signin').hidden = false
  const draw = () => render(signinView(signin, {
    submit: async (token, remember) => {
      unlockAudio() // this click is the gesture that lets the console beep later
      signin.busy = true
      draw()
      const status = await checkToken(token).catch(() => 0)
      signin.busy = false
      if (status === 200) {
        keepToken(token, remember)
        startConsole()
      } else {
        signin.error = status === 0 || status >= 500 ? t('signin.unreachable') : t('signin.invalid')
        draw()
      }
    },
    setLanguage: (lang) => { setLanguage(/** @type {'vi'|'en'} */ (lang)); draw() }
  }), $('signin'))
  draw()
}

// ---- the console ------------------------------------------------------------------------

async function startConsole () {
  $('signin').hidden = true
  $('console').hidden = false
  const config = await loadConfig()
  const ui = {
    tab: 'alerts',
    now: Date.now(),
    cue: /** @type {any} */ (null),
    /** alert id → until when its card flashes */
    flashing: new Map(),
    // Messages are read through getters, so they follow a change of language while shown.
    action: { busy: false, flash: /** @type {{ok: boolean, text: string} | null} */ (null) },
    reports: { message: /** @type {{ok: boolean, text: string} | null} */ (null) },
    announce: { busy: false, message: /** @type {{ok: boolean, text: string} | null} */ (null) },
    fleetFilter: 'attention'
  }
  let cueTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
  /** @type {{ close(): void } | null} */
  let stream = null

  const signOut = (/** @type {string | null} */ reason = null) => {
    stream?.close()
    forgetToken()
    if (reason) sessionStorage.setItem('sos.signout-reason', reason)
    location.reload()
  }
  // Changes arriving together (a burst of stream events, each read back from the API) are drawn
  // once: drawing each one made an outage's hundreds of changes hold the page for minutes.
  let drawSoon = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
  const drawNow = () => { clearTimeout(drawSoon); drawSoon = undefined; draw() }
  const api = createApi(storedToken, () => signOut(t('signin.expired')))
  const store = createStore(api, ({ kind, alert }) => {
    ui.flashing.set(alert.id, Date.now() + CUE_MS)
    if (kind === 'press') return
    // The banner stays on a panic still waiting: a burst of other alerts (an outage's devices
    // going offline) must not replace it.
    const showing = ui.cue && state.alerts.get(ui.cue.alert.id)
    const keep = alert.kind !== 'panic' && showing?.kind === 'panic' && showing.state === 'open'
    if (!keep) {
      ui.cue = { kind, alert }
      clearTimeout(cueTimer)
      cueTimer = setTimeout(() => { ui.cue = null; draw() }, CUE_MS)
    }
    // A panic is drawn at once, not with the changes around it; then the sound: seeing the
    // alert must never wait for the sound card.
    if (alert.kind === 'panic') drawNow()
    setTimeout(() => beep(kind), 0)
  })
  const { state } = store
  const map = createMap($('map'), config, (id) => selectAlert(id))
  prepareAudio()

  const selectAlert = (/** @type {string | null} */ id) => {
    ui.action.flash = null
    if (id) ui.tab = 'alerts'
    store.select(id)
  }

  async function act (/** @type {string} */ id, /** @type {string} */ action, /** @type {object} */ body, /** @type {HTMLFormElement} */ form) {
    ui.action = { busy: true, flash: null }
    draw()
    try {
      await api('POST', `/v1/alerts/${encodeURIComponent(id)}/${action}`, body)
      ui.action.flash = { ok: true, get text () { return t(`action.done.${action}`) } }
      form.reset()
    } catch (err) {
      ui.action.flash = { ok: false, get text () { return errorText(err) } }
    }
    ui.action.busy = false
    await store.alertChanged(id)
  }

  const on = {
    setTab (/** @type {string} */ tab) {
      ui.tab = tab
      draw()
      if (tab === 'alerts') map.resize()
      if (tab === 'reports') store.refreshReports()
      if (tab === 'fleet') store.refreshDevices().catch(() => {})
    },
    setLanguage (/** @type {string} */ lang) { setLanguage(/** @type {'vi'|'en'} */ (lang)); draw() },
    toggleSound () {
      if (!audioReady()) { unlockAudio().then(draw); setMuted(false) } else setMuted(!isMuted())
      draw()
    },
    signOut: () => signOut(),
    selectAlert
  }

  function draw () {
    ui.now = Date.now()
    // The banner is for what still waits: once someone took the alert, it goes.
    if (ui.cue && state.alerts.get(ui.cue.alert.id)?.state !== 'open') ui.cue = null
    for (const [id, until] of ui.flashing) if (until < ui.now) ui.flashing.delete(id)
    const unacked = [...state.alerts.values()].filter((a) => a.state === 'open').length
    document.title = `${unacked ? `(${unacked}) ` : ''}${t('app.title')}`
    render(headerView(state, { ...ui, audioReady: audioReady(), muted: isMuted() }, on), $('header'))
    for (const tab of ['alerts', 'reports', 'announce', 'fleet']) $(`view-${tab}`).hidden = ui.tab !== tab
    render(alertListView(state, ui, selectAlert), $('alert-list'))
    render(alertDetailView(state, { now: ui.now, ...ui.action }, { act, close: () => selectAlert(null) }), $('alert-detail'))
    const detailOpen = Boolean(state.selectedId)
    if ($('alert-detail').classList.contains('open') !== detailOpen) {
      $('alert-detail').classList.toggle('open', detailOpen)
      map.resize() // the map's column just changed width
    }
    $('map-note').textContent = map.noTilesNote()
    map.update(state)
    render(reportsView(state, { now: ui.now, ...ui.reports }, {
      setFilter (f) { state.reportsFilter = f; store.refreshReports() },
      async close (id) {
        try {
          await api('POST', `/v1/reports/${encodeURIComponent(id)}/close`, {})
          ui.reports.message = null
        } catch (err) { ui.reports.message = { ok: false, get text () { return errorText(err) } } }
        await store.refreshReports()
      }
    }), $('view-reports'))
    render(announceView(state, ui.announce, {
      async send (body, form) {
        ui.announce = { busy: true, message: null }
        draw()
        try {
          await api('POST', '/v1/announcements', body)
          ui.announce.message = { ok: true, get text () { return t('announce.sent', { zone: body.zone }) } }
          form.reset()
        } catch (err) { ui.announce.message = { ok: false, get text () { return errorText(err) } } }
        ui.announce.busy = false
        draw()
      }
    }), $('view-announce'))
    render(fleetView(state, { now: ui.now, filter: /** @type {any} */ (ui.fleetFilter) }, {
      setFilter (f) { ui.fleetFilter = f; draw() }
    }), $('view-fleet'))
  }

  store.subscribe(() => { drawSoon ??= setTimeout(drawNow, 30) })
  stream = openLiveStream({
    token: storedToken,
    onOpen: () => { store.reload() },
    onStatus: (status) => { state.connection = status; draw() },
    onUnauthorized: () => signOut(t('signin.expired')),
    onEvent (event, data) {
      if (event === 'alert' && data?.alertId) store.alertChanged(data.alertId)
      else if (event === 'device' && data?.deviceId) store.deviceChanged(data.deviceId)
      else if (event === 'report') store.refreshReports()
      else if (event === 'reset') store.reload()
    }
  })
  // Ages tick; "online" is a matter of time since last seen, so the fleet is re-read now and then.
  setInterval(draw, 10_000)
  setInterval(() => { if (state.connection === 'live') store.refreshDevices().catch(() => {}) }, 30_000)
  setInterval(() => { if (state.connection === 'live') store.refreshReports() }, 60_000)
  // Nothing unacknowledged goes unnoticed: a short reminder while a panic waits for someone.
  setInterval(() => {
    if ([...state.alerts.values()].some((a) => a.state === 'open' && a.kind === 'panic')) beep('reminder')
  }, REMINDER_MS)
  window.addEventListener('resize', () => map.resize())
  draw()
  map.resize()
}

// ---- boot -------------------------------------------------------------------------------

async function boot () {
  setLanguage(/** @type {'vi'|'en'} */ (document.documentElement.lang = localStorage.getItem('sos.lang') === 'en' ? 'en' : 'vi'))
  const reason = sessionStorage.getItem('sos.signout-reason')
  sessionStorage.removeItem('sos.signout-reason')
  const fragment = takeFragmentToken()
  // Signed in already: a link carrying another token does not take the session over (anyone
  // holding some token could otherwise put the operator's console under theirs with a link),
  // unless the server no longer takes the one kept (a wall display given a new link after its
  // token was revoked). Signing out first, then opening the link, works too.
  const current = storedToken()
  if (fragment && current && fragment !== current) {
    const kept = await checkToken(current).catch(() => 0)
    if (kept !== 401 && kept !== 403) return startConsole()
    forgetToken()
  }
  if (fragment) {
    const status = await checkToken(fragment).catch(() => 0)
    if (status === 200) {
      // A wall display: keep the token across restarts of the browser.
      keepToken(fragment, true)
      return startConsole()
    }
    return showSignin(status === 0 || status >= 500 ? t('signin.unreachable') : t('signin.invalid'))
  }
  if (storedToken()) return startConsole()
  showSignin(reason)
}

// A wall display's address pasted into a tab that is already open, not signed in yet: only the
// fragment changes. (Signed in, a link's token is dropped: see boot.)
window.addEventListener('hashchange', () => {
  if (!new URLSearchParams(location.hash.slice(1)).has('token')) return
  if (storedToken()) takeFragmentToken()
  else location.reload()
})

boot()
