/** Resident reports from kiosks (the "Listen" queue), each with the ticket id the kiosk showed. */
import { html } from '/vendor/lit-html/lit-html.js'
import { repeat } from '/vendor/lit-html/directives/repeat.js'
import { t } from '../i18n.js'
import { age, clock } from '../format.js'

/** Field names as the reports API gives them, with the likely alternatives. */
const ticketOf = (/** @type {any} */ r) => r.ticketId ?? r.ticket ?? r.id
const timeOf = (/** @type {any} */ r) => r.createdAt ?? r.receivedAt ?? r.time ?? r.openedAt
const stateOf = (/** @type {any} */ r) => r.state ?? (r.closedAt ? 'closed' : 'open')

/**
 * @param {any} state
 * @param {{ now: number, message: { ok: boolean, text: string } | null }} ui
 * @param {{ setFilter(f: 'open'|'all'): void, close(id: string): void }} on
 */
export function reportsView (state, ui, on) {
  const devices = state.devices
  return html`
    <div class="page">
      <div class="page-head">
        <h2>${t('reports.title')}</h2>
        <div class="filter" role="group" ?hidden=${state.reports === null}>
          ${(/** @type {const} */ (['open', 'all'])).map((f) => html`
            <button aria-pressed=${state.reportsFilter === f ? 'true' : 'false'} @click=${() => on.setFilter(f)}>
              ${t(f === 'open' ? 'reports.showOpen' : 'reports.showAll')}</button>`)}
        </div>
      </div>
      ${ui.message ? html`<p class="flash-message ${ui.message.ok ? 'ok' : 'error'}" role="status">${ui.message.text}</p>` : ''}
      ${state.reports === null ? html`<p class="empty">${t('error.unavailable')}</p>`
        : state.reports.length === 0 ? html`<p class="empty">${t('reports.empty')}</p>`
        : html`
        <table class="grid reports">
          <thead><tr>
            <th>${t('reports.ticket')}</th><th>${t('reports.category')}</th><th>${t('reports.text')}</th>
            <th>${t('reports.place')}</th><th>${t('reports.received')}</th><th></th>
          </tr></thead>
          <tbody>${repeat(state.reports, (/** @type {any} */ r) => r.id, (/** @type {any} */ r) => html`
            <tr class="report-${stateOf(r)}" data-report-id=${r.id}>
              <td class="ticket"><code>${ticketOf(r)}</code></td>
              <td><span class="category cat-${r.category}">${t(`category.${r.category}`)}</span></td>
              <td class="report-text">${r.text ?? r.report?.text ?? ''}</td>
              <td>${r.deviceName ?? devices.get(r.deviceId)?.name ?? r.deviceId}<br><small>${t('zone')} ${r.zone ?? devices.get(r.deviceId)?.zone ?? ''}</small></td>
              <td>${clock(timeOf(r))}<br><small>${timeOf(r) ? age(timeOf(r), ui.now) : ''}</small></td>
              <td>${stateOf(r) === 'open'
                ? html`<button class="secondary" @click=${() => on.close(r.id)}>${t('reports.close')}</button>`
                : html`<span class="state-chip">${t('reports.closed')}</span>`}</td>
            </tr>`)}
          </tbody>
        </table>`}
    </div>`
}
