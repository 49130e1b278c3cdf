/** The live list of active alerts: escalated first, then those waiting for someone, then newest. */
import { html } from '/vendor/lit-html/lit-html.js'
import { repeat } from '/vendor/lit-html/directives/repeat.js'
import { t } from '../i18n.js'
import { age, fullTime, pressCount } from '../format.js'
import { isEscalated, sortAlerts } from '../store.js'

/**
 * @param {any} state
 * @param {{ flashing: Map<string, number>, now: number }} ui
 * @param {(id: string) => void} select
 */
export function alertListView (state, ui, select) {
  const alerts = sortAlerts([...state.alerts.values()])
  return html`
    <h2 class="panel-title">${t('alerts.title')} <span class="count">${alerts.length}</span></h2>
    ${state.loadError ? html`<p class="error" role="alert">${t('error.generic', { message: state.loadError })}</p>` : ''}
    ${alerts.length === 0 && state.loaded ? html`<p class="empty">${t('alerts.empty')}</p>` : ''}
    <ul class="alert-list">
      ${repeat(alerts, (a) => a.id, (a) => html`
        <li class="alert-card kind-${a.kind} state-${a.state} ${isEscalated(a) ? 'escalated' : ''}
                   ${state.selectedId === a.id ? 'selected' : ''} ${(ui.flashing.get(a.id) ?? 0) > ui.now ? 'flash' : ''}"
            data-alert-id=${a.id}>
          <button class="card-button" @click=${() => select(a.id)} aria-pressed=${state.selectedId === a.id ? 'true' : 'false'}>
            <span class="card-row">
              <span class="kind-badge">${t(`kind.${a.kind}`)}</span>
              ${isEscalated(a) ? html`<span class="escalated-badge">${t('escalated')}</span>` : ''}
              ${a.test ? html`<span class="test-badge">${t('test')}</span>` : ''}
              <span class="state-chip">${t(`state.${a.state}`)}</span>
            </span>
            <span class="device-name">${a.deviceName ?? a.deviceId}</span>
            <span class="card-row meta">
              <span>${t('zone')} <strong>${a.zone}</strong></span>
              ${a.kind === 'panic' ? html`<span class="presses">${pressCount(a.pressCount)}</span>` : ''}
              <span class="age" title=${fullTime(a.openedAt)}>${age(a.openedAt, ui.now)}</span>
            </span>
          </button>
        </li>`)}
    </ul>`
}
