/** The top bar: name, connection state, unacknowledged count, sound, language, sign-out; then the tabs. */
import { html } from '/vendor/lit-html/lit-html.js'
import { LANGUAGES, language, t } from '../i18n.js'
import { ACTIVE_STATES, shownConnection } from '../store.js'
import { fleetRows } from './fleet.js'

/**
 * @param {any} state the store's state
 * @param {{ tab: string, audioReady: boolean, muted: boolean, cue: any }} ui
 * @param {{ setTab(tab: string): void, setLanguage(lang: string): void, toggleSound(): void, signOut(): void, selectAlert(id: string): void }} on
 */
export function headerView (state, ui, on) {
  const alerts = [...state.alerts.values()]
  const unacked = alerts.filter((a) => a.state === 'open').length
  const reports = state.reports ? state.reports.filter((/** @type {any} */ r) => (r.state ?? 'open') === 'open').length : 0
  const fleetIssues = fleetRows(state).filter((r) => r.attention).length
  const connection = shownConnection(state)
  const tabs = [
    ['alerts', t('tab.alerts'), alerts.filter((a) => ACTIVE_STATES.includes(a.state)).length],
    ['reports', t('tab.reports'), reports],
    ['announce', t('tab.announce'), 0],
    ['fleet', t('tab.fleet'), fleetIssues]
  ]
  return html`
    <div class="topbar ${unacked > 0 ? 'has-unacked' : ''}">
      <div class="brand">
        <span class="brand-mark" aria-hidden="true">SOS</span>
        <div><h1>${t('app.title')}</h1><p>${t('app.subtitle')}</p></div>
      </div>
      <div class="status-area">
        <span class="conn conn-${connection}" role="status" data-connection=${connection}>
          <span class="dot" aria-hidden="true"></span>${t(`conn.${connection}`)}
        </span>
        ${unacked > 0 ? html`<span class="unacked-count">${t('alerts.unacked', { n: unacked })}</span>` : ''}
      </div>
      <div class="controls">
        <button class="sound ${ui.audioReady && !ui.muted ? 'on' : 'off'}" @click=${on.toggleSound} title=${ui.muted ? t('sound.mutedHelp') : ''}>
          ${!ui.audioReady ? t('sound.enable') : ui.muted ? t('sound.muted') : t('sound.on')}
        </button>
        <div class="lang-switch" role="group" aria-label="Language">
          ${LANGUAGES.map((lang) => html`
            <button lang=${lang} aria-pressed=${language() === lang ? 'true' : 'false'} @click=${() => on.setLanguage(lang)}>${lang.toUpperCase()}</button>`)}
        </div>
        <button class="signout" @click=${on.signOut}>${t('signout')}</button>
      </div>
    </div>
    ${!ui.audioReady ? html`
      <button class="sound-warning" role="alert" @click=${on.toggleSound}>${t('sound.warning')}</button>` : ''}
    ${ui.cue ? html`
      <button class="cue-banner cue-${ui.cue.kind}" role="alert" @click=${() => on.selectAlert(ui.cue.alert.id)}>
        <strong>${ui.cue.kind === 'escalated' ? t('alerts.escalatedCue') : t('alerts.new')}</strong>
        <span>${ui.cue.alert.deviceName ?? ui.cue.alert.deviceId} · ${t(`kind.${ui.cue.alert.kind}`)} · ${t('zone')} ${ui.cue.alert.zone}</span>
      </button>` : ''}
    <nav class="tabs" role="tablist">
      ${tabs.map(([id, label, count]) => html`
        <button role="tab" data-tab=${id} aria-selected=${ui.tab === id ? 'true' : 'false'} @click=${() => on.setTab(String(id))}>
          ${label}${count ? html` <span class="count">${count}</span>` : ''}
        </button>`)}
    </nav>`
}
