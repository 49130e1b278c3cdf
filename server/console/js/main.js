/**
 * The operator console: which token to start with (boot; the sign-in itself is signin-flow.js),
 * then the live views. Wires the store (what we know), the live stream (what changes), the cues
 * (sound and banner), the alarms (a lost feed) and the views (lit-html templates).
 */
import { render } from '/vendor/lit-html/lit-html.js'
import { setLanguage, t } from './i18n.js'
import { ApiError, checkToken, createApi } from './api.js'
import { createSignin } from './signin-flow.js'
import { forgetToken, keepToken, storedToken, takeFragmentToken } from './session.js'
import { openLiveStream } from './live.js'
import { createStore, shownConnection } from './store.js'
import { audioReady, beep, isMuted, prepareAudio, setMuted, unlockAudio } from './sound.js'
import { createCueSound } from './cue-sound.js'
import { createStandingAlarm } from './standing-alarm.js'
import { focusCard, focusDetailHeading, keepFocusInDetail } from './focus.js'
import { setTimeZone } from './format.js'
import { headerView } from './views/header.js'
import { alertListView } from './views/alert-list.js'
import { alertDetailView } from './views/alert-detail.js'
import { createMap } from './views/map.js'
import { reportsView } from './views/reports.js'
import { announceView } from './views/announce.js'
import { fleetView } from './views/fleet.js'

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))
const REMINDER_MS = 30_000
const CUE_MS = 15_000
/** Not live this long (the stream down, or its data incomplete) is no blip: a reconnect takes 2–6 s. */
const LOST_AFTER_MS = 20_000
/** How often the lost-connection tone repeats. */
const ALARM_REPEAT_MS = 15_000
/** The ward's zone when the server's settings cannot be read (the server's own default). */
const DEFAULT_TIME_ZONE = 'Asia/Ho_Chi_Minh'

/** The map needs its settings before it is drawn; without them it still works, without tiles. */
async function loadConfig () {
  try {
    const response = await fetch('/console/config', { cache: 'no-store' })
    if (response.ok) return await response.json()
  } catch {}
  return { tileUrl: null, tileAttribution: '', mapCenter: [10.8231, 106.6297, 13], timeZone: DEFAULT_TIME_ZONE }
}

/** Human text for a failed API call. */
function errorText (/** @type {unknown} */ err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return err.code === 'TIMEOUT' ? t('error.timeout') : t('error.network')
    if (err.status === 403) return t('error.forbidden')
    if (err.status === 503 && err.code === 'DATABASE_UNAVAILABLE') return t('error.database')
    if (err.status === 404 && err.code === 'NOT_FOUND' && err.message.startsWith('no route')) return t('error.unavailable')
    return t('error.generic', { message: err.message })
  }
  return t('error.generic', { message: String(err) })
}

/**
 * A resolve refused (409 ALERT_CHANGED): the person pressed again since the alert was shown,
 * or something else changed (another desk acted, it escalated). Worked out as it is drawn,
 * from the alert as last read (`current`): the read after the refusal may still be on its way.
 */
function changedFlash (/** @type {any} */ shown, /** @type {() => any} */ current) {
  return {
    ok: false,
    get text () {
      const now = current()
      return now && now.pressCount > shown.pressCount ? t('action.changed.pressed', { n: now.pressCount }) : t('action.changed.other')
    }
  }
}

// ---- sign-in ----------------------------------------------------------------------------

let consoleStarted = false
/** A checked token: kept, then the console (a fresh page if one ran before, signed out since). */
const signin = createSignin((token, remember) => {
  keepToken(token, remember)
  if (consoleStarted) location.reload()
  else startConsole()
})

// ---- the console ------------------------------------------------------------------------

async function startConsole () {
  consoleStarted = true
  $('signin').hidden = true
  $('console').hidden = false
  const config = await loadConfig()
  setTimeZone(config.timeZone ?? DEFAULT_TIME_ZONE)
  const ui = {
    tab: 'alerts',
    now: Date.now(),
    cue: /** @type {any} */ (null),
    /** alert id → until when its card flashes */
    flashing: new Map(),
    // Messages are read through getters, so they follow a change of language while shown.
    /** alert id → its action on its way and its result: each shows on its own alert only */
    actions: /** @type {Map<string, { busy: boolean, flash: {ok: boolean, text: string} | null }>} */ (new Map()),
    reports: { message: /** @type {{ok: boolean, text: string} | null} */ (null) },
    announce: { busy: false, message: /** @type {{ok: boolean, text: string} | null} */ (null) },
    fleetFilter: 'attention',
    /** An alert just selected: focus goes to its detail once drawn. */
    focusDetail: /** @type {string | null} */ (null)
  }
  let cueTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
  /** @type {{ close(): void } | null} */
  let stream = null
  /** @type {ReturnType<typeof setInterval>[]} */
  const timers = []
  let stopped = false

  /** The operator's own sign-out: a fresh page. */
  const signOut = () => {
    stream?.close()
    forgetToken()
    location.reload()
  }
  /**
   * The token was revoked (the stream or a request heard 401). The display is signed out where
   * it stands, with the signed-out alarm: reloading the page would also have lost the sound,
   * which a browser allows only after a click.
   */
  const revoked = () => {
    if (stopped) return
    stopped = true
    stream?.close()
    // Nothing the store still hears (a read that was on its way) may drive the console or its
    // alarm again: the store stops retrying, its listener goes, the alarm stays quiet.
    unsubscribe()
    store.stop()
    connectionAlarm.stop()
    clearTimeout(drawSoon)
    for (const timer of timers) clearInterval(timer)
    forgetToken()
    signin.show(t('signin.expired'), { alarm: true })
  }
  // Changes arriving together (a burst of stream events, each read back from the API) are drawn
  // once: drawing each one made an outage's hundreds of changes hold the page for minutes.
  let drawSoon = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined)
  const drawNow = () => { clearTimeout(drawSoon); drawSoon = undefined; if (!stopped) draw() }
  const api = createApi(storedToken, revoked)
  const playCue = createCueSound(beep)
  const store = createStore(api, (cue) => {
    const { kind, alert } = cue
    ui.flashing.set(alert.id, Date.now() + CUE_MS)
    if (kind === 'press') return
    // The banner stays on a panic still waiting: a burst of other alerts (an outage's devices
    // going offline) must not replace it.
    const showing = ui.cue && state.alerts.get(ui.cue.alert.id)
    const keep = alert.kind !== 'panic' && showing?.kind === 'panic' && showing.state === 'open'
    if (!keep) {
      ui.cue = { kind, alert }
      clearTimeout(cueTimer)
      cueTimer = setTimeout(() => { ui.cue = null; drawNow() }, CUE_MS)
    }
    // A panic is drawn at once, not with the changes around it; then the sound: seeing the
    // alert must never wait for the sound card.
    if (alert.kind === 'panic') drawNow()
    setTimeout(() => playCue(cue), 0)
  })
  const { state } = store
  // The live feed lost (or its data incomplete) for longer than a reconnect takes: the title
  // says so and a falling tone repeats, until it is live again. Not silenced by mute.
  const connectionAlarm = createStandingAlarm({ beep: () => beep('lost'), afterMs: LOST_AFTER_MS, repeatMs: ALARM_REPEAT_MS, onChange: () => drawNow() })
  const watchConnection = () => {
    const shown = shownConnection(state)
    connectionAlarm.set(shown === 'live' ? null : shown)
  }
  const map = createMap($('map'), config, (id) => selectAlert(id))
  prepareAudio()

  const selectAlert = (/** @type {string | null} */ id) => {
    const closing = state.selectedId
    // The result shown on the alert left behind goes; one still on its way stays, to be seen
    // on its own alert when the operator comes back to it.
    if (closing && closing !== id && !ui.actions.get(closing)?.busy) ui.actions.delete(closing)
    if (id) ui.tab = 'alerts'
    ui.focusDetail = id
    store.select(id)
    if (!id && closing) { drawNow(); focusCard($('alert-list'), closing) }
  }

  /** `shown`: the alert as the operator saw it when acting. */
  async function act (/** @type {any} */ shown, /** @type {string} */ action, /** @type {object} */ body, /** @type {HTMLFormElement} */ form) {
    const id = /** @type {string} */ (shown.id)
    ui.actions.set(id, { busy: true, flash: null })
    drawNow()
    /** @type {{ok: boolean, text: string}} */
    let flash
    const readAt = store.markRead()
    try {
      const answer = await api('POST', `/v1/alerts/${encodeURIComponent(id)}/${action}`, body)
      // The alert as this action left it, shown before the buttons come back: the next action
      // carries its new version.
      store.acted(answer, readAt)
      flash = { ok: true, get text () { return t(`action.done.${action}`) } }
      form.reset()
    } catch (err) {
      // Refused because the alert changed since it was shown: it is read again, and what
      // changed said plainly, before the buttons come back (a second click on the old version
      // would only be refused again). The note and outcome typed stay in the form.
      if (err instanceof ApiError && err.code === 'ALERT_CHANGED') {
        await store.alertChanged(id)
        flash = changedFlash(shown, () => state.alerts.get(id) ?? (state.detail?.alert.id === id ? state.detail.alert : null))
      } else {
        flash = { ok: false, get text () { return errorText(err) } }
      }
    }
    ui.actions.set(id, { busy: false, flash })
    // Read again all the same: the timeline gains the transition, and a read that failed is retried.
    await store.alertChanged(id)
    drawNow()
    if (state.selectedId === id) keepFocusInDetail($('alert-detail'))
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
    // What is wrong leads the title, so a tab in the background or on the taskbar says it too.
    const alarm = connectionAlarm.raised()
    const alarmText = alarm === null ? '' : `⚠ ${t(alarm === 'degraded' ? 'title.incomplete' : 'title.lost')} · `
    document.title = `${alarmText}${unacked ? `(${unacked}) ` : ''}${t('app.title')}`
    render(headerView(state, { ...ui, audioReady: audioReady(), muted: isMuted() }, on), $('header'))
    for (const tab of ['alerts', 'reports', 'announce', 'fleet']) $(`view-${tab}`).hidden = ui.tab !== tab
    render(alertListView(state, ui, selectAlert), $('alert-list'))
    const action = (state.selectedId && ui.actions.get(state.selectedId)) || { busy: false, flash: null }
    render(alertDetailView(state, { now: ui.now, ...action }, { act, close: () => selectAlert(null) }), $('alert-detail'))
    const detailOpen = Boolean(state.selectedId)
    if ($('alert-detail').classList.contains('open') !== detailOpen) {
      $('alert-detail').classList.toggle('open', detailOpen)
      map.resize() // the map's column just changed width
    }
    // Once the panel is shown: a heading in a closed panel (display: none) takes no focus. When
    // the alert's read came back before the first drawing after its selection (30 ms), focus
    // was asked of the hidden heading, and the keyboard stayed on the card (seen in CI).
    if (ui.focusDetail && state.detail?.alert.id === ui.focusDetail && focusDetailHeading($('alert-detail'))) ui.focusDetail = null
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

  const unsubscribe = store.subscribe(() => {
    watchConnection()
    drawSoon ??= setTimeout(drawNow, 30)
  })
  stream = openLiveStream({
    token: storedToken,
    onOpen: () => { store.reload() },
    onStatus: (status) => { state.connection = status; watchConnection(); drawNow() },
    onUnauthorized: revoked,
    onEvent (event, data) {
      if (event === 'alert' && data?.alertId) store.alertChanged(data.alertId)
      else if (event === 'device' && data?.deviceId) store.deviceChanged(data.deviceId)
      else if (event === 'report') store.refreshReports()
      else if (event === 'reset') store.reload()
    }
  })
  // Ages tick; "online" is a matter of time since last seen, so the fleet is re-read now and then.
  timers.push(setInterval(drawNow, 10_000))
  timers.push(setInterval(() => { if (state.connection === 'live') store.refreshDevices().catch(() => {}) }, 30_000))
  timers.push(setInterval(() => { if (state.connection === 'live') store.refreshReports() }, 60_000))
  // Nothing unacknowledged goes unnoticed: a short reminder while a panic waits for someone.
  timers.push(setInterval(() => {
    if ([...state.alerts.values()].some((a) => a.state === 'open' && a.kind === 'panic')) beep('reminder')
  }, REMINDER_MS))
  window.addEventListener('resize', () => map.resize())
  watchConnection()
  draw()
  map.resize()
}

// ---- boot -------------------------------------------------------------------------------

async function boot () {
  setLanguage(/** @type {'vi'|'en'} */ (document.documentElement.lang = localStorage.getItem('sos.lang') === 'en' ? 'en' : 'vi'))
  const fragment = takeFragmentToken()
  const current = storedToken()
  if (fragment && current) {
    // A wall display restarted with the link it holds the token of: it was good when kept.
    // The console starts (its stream retries until the server answers, and a revoked token
    // signs it out with the alarm); a check that failed once no longer leaves it on the form.
    if (fragment === current) {
      keepToken(current, true)
      return startConsole()
    }
    // Signed in already: a link carrying another token does not take the session over (anyone
    // holding some token could otherwise put the operator's console under theirs with a link),
    // unless the server no longer takes the one kept (a wall display given a new link after its
    // token was revoked). Signing out first, then opening the link, works too.
    const kept = await checkToken(current)
    if (kept !== 401 && kept !== 403) return startConsole()
    forgetToken()
  }
  if (fragment) return signin.fromLink(fragment)
  if (storedToken()) return startConsole()
  signin.show()
}

// A wall display's address pasted into a tab that is already open, not signed in yet: only the
// fragment changes. (Signed in, a link's token is dropped: see boot.)
window.addEventListener('hashchange', () => {
  if (!new URLSearchParams(location.hash.slice(1)).has('token')) return
  if (storedToken()) takeFragmentToken()
  else location.reload()
})

boot()
