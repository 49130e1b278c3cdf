/**
 * One alert: what, where, since when; the operator's actions (each reaches the device as a
 * downlink state); and its timeline, transitions and the device's own events merged by time.
 */
import { html } from '/vendor/lit-html/lit-html.js'
import { keyed } from '/vendor/lit-html/directives/keyed.js'
import { t } from '../i18n.js'
import { age, clock } from '../format.js'
import { isEscalated } from '../store.js'

const OUTCOMES = ['real', 'false_alarm', 'prank', 'accidental', 'test']
/** Which actions an alert in each state allows (the server enforces the same). */
const ALLOWED = {
  acknowledge: ['open'],
  dispatch: ['open', 'acknowledged'],
  resolve: ['open', 'acknowledged', 'dispatched']
}

/**
 * @param {any} state
 * @param {{ now: number, busy: boolean, flash: { ok: boolean, text: string } | null }} ui
 * @param {{ act(id: string, action: string, body: object, form: HTMLFormElement): void, close(): void }} on
 */
export function alertDetailView (state, ui, on) {
  if (!state.selectedId) return html`<p class="empty detail-empty">${t('detail.select')}</p>`
  if (!state.detail) return html`<p class="empty">${t('detail.loading')}</p>`
  const { alert, events } = state.detail
  const can = (/** @type {keyof typeof ALLOWED} */ action) => ALLOWED[action].includes(alert.state) && !ui.busy

  const submit = (/** @type {SubmitEvent} */ event) => {
    event.preventDefault()
    const form = /** @type {HTMLFormElement} */ (event.target)
    const action = /** @type {HTMLButtonElement | null} */ (event.submitter)?.value
    const note = String(new FormData(form).get('note') ?? '').trim()
    const outcome = String(new FormData(form).get('outcome') ?? '')
    if (!action) return
    if (action === 'resolve' && !outcome) {
      /** @type {HTMLSelectElement} */ (form.elements.namedItem('outcome')).focus()
      return
    }
    on.act(alert.id, action, { ...(note ? { note } : {}), ...(action === 'resolve' ? { outcome } : {}) }, form)
  }

  return keyed(alert.id, html`
    <div class="detail kind-${alert.kind} state-${alert.state}" data-alert-id=${alert.id}>
      <div class="detail-head">
        <span class="kind-badge">${t(`kind.${alert.kind}`)}</span>
        ${isEscalated(alert) ? html`<span class="escalated-badge">${t('escalated')}</span>` : ''}
        <span class="state-chip" data-state=${alert.state}>${t(`state.${alert.state}`)}</span>
        <button class="close" @click=${on.close} aria-label=${t('detail.close')}>×</button>
      </div>
      <h2 class="device-name">${alert.deviceName ?? alert.deviceId}</h2>
      <dl class="facts">
        <div><dt>${t('zone')}</dt><dd>${alert.zone}</dd></div>
        <div><dt>${t('detail.opened')}</dt><dd>${clock(alert.openedAt)} <small>(${age(alert.openedAt, ui.now)})</small></dd></div>
        ${alert.kind === 'panic' ? html`
          <div><dt>${t('detail.lastPress')}</dt><dd>${clock(alert.lastPressAt)} · ${t('presses', { n: alert.pressCount })}</dd></div>` : ''}
        <div><dt>${t('detail.device')}</dt><dd><code>${alert.deviceId}</code></dd></div>
        ${alert.lat != null ? html`<div><dt>${t('detail.position')}</dt><dd>${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}</dd></div>` : ''}
        ${alert.outcome ? html`<div><dt>${t('detail.outcome')}</dt><dd>${t(`outcome.${alert.outcome}`)}</dd></div>` : ''}
      </dl>
      ${can('resolve') || ui.busy ? html`
        <form class="actions" @submit=${submit}>
          <label class="note"><span>${t('action.note')}</span><textarea name="note" rows="2" maxlength="2000"></textarea></label>
          <div class="action-row">
            <button class="primary" name="action" value="acknowledge" ?disabled=${!can('acknowledge')}>${t('action.acknowledge')}</button>
            <button class="secondary" name="action" value="dispatch" ?disabled=${!can('dispatch')}>${t('action.dispatch')}</button>
          </div>
          <div class="action-row resolve">
            <label><span>${t('action.outcome')}</span>
              <select name="outcome">
                <option value="">${t('action.chooseOutcome')}</option>
                ${OUTCOMES.map((o) => html`<option value=${o}>${t(`outcome.${o}`)}</option>`)}
              </select>
            </label>
            <button class="resolve-button" name="action" value="resolve" ?disabled=${!can('resolve')}>${t('action.resolve')}</button>
          </div>
        </form>` : ''}
      ${ui.flash ? html`<p class="flash-message ${ui.flash.ok ? 'ok' : 'error'}" role="status">${ui.flash.text}</p>` : ''}
      <h3>${t('detail.timeline')}</h3>
      <ol class="timeline">${timeline(alert, events).map((item) => html`
        <li class="tl-${item.kind}"><time datetime=${item.at}>${clock(item.at)}</time><span>${item.text}</span>
          ${item.note ? html`<q>${item.note}</q>` : ''}</li>`)}
      </ol>
    </div>`)
}

/** Who acted, as people read it: operators by their token's name, devices and the system by what they are. */
function actorName (/** @type {string} */ actor) {
  if (actor.startsWith('device:')) return t('timeline.byDevice')
  if (actor === 'system' || actor.startsWith('system:')) return t('timeline.bySystem')
  return actor
}

/** Transitions and device events in time order. */
function timeline (/** @type {any} */ alert, /** @type {any[]} */ events) {
  const items = [
    ...(alert.transitions ?? []).map((/** @type {any} */ tr) => ({
      at: tr.at,
      kind: `state-${tr.to}`,
      note: tr.note,
      text: tr.to === 'open' && tr.from === null ? t('timeline.opened') : t('timeline.transition', { state: t(`state.${tr.to}`), actor: actorName(tr.actor) })
    })),
    ...events.map((e) => ({ at: e.time, kind: `event-${e.type}`, note: e.data?.report?.text ?? null, text: `${t(`event.${e.type}`)} (#${e.seq})`, cause: true })),
    ...(alert.escalatedAt ? [{ at: alert.escalatedAt, kind: 'escalated', note: null, text: t('timeline.escalated') }] : [])
  ]
  // At the same instant the device's event comes first: it caused the transition.
  return items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || Number(Boolean(b.cause)) - Number(Boolean(a.cause)))
}
