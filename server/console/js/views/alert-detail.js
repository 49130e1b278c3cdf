/**
 * One alert: what, where, since when; the operator's actions (each reaches the device as a
 * downlink state); and its timeline, transitions and the device's own events merged by time.
 */
import { html } from '/vendor/lit-html/lit-html.js'
import { keyed } from '/vendor/lit-html/directives/keyed.js'
import { t } from '../i18n.js'
import { age, clock, zoneLabel } from '../format.js'
import { isEscalated } from '../store.js'

const OUTCOMES = ['real', 'false_alarm', 'prank', 'accidental', 'test']
/** Which actions an alert in each state allows (the server enforces the same). */
const ALLOWED = {
  acknowledge: ['open'],
  dispatch: ['open', 'acknowledged'],
  resolve: ['open', 'acknowledged', 'dispatched']
}

/**
 * `ui` is this alert's own action state: the result of an action shows on the alert it was
 * for, never on another one opened meanwhile.
 * @param {any} state
 * @param {{ now: number, busy: boolean, flash: { ok: boolean, text: string } | null }} ui
 * @param {{ act(alert: any, action: string, body: object, form: HTMLFormElement): void, close(): void }} on
 */
export function alertDetailView (state, ui, on) {
  if (!state.selectedId) return html`<p class="empty detail-empty">${t('detail.select')}</p>`
  if (!state.detail) {
    return html`<p class="empty">${t('detail.loading')}</p>
      ${state.detailError ? html`<p class="error" role="status">${t('detail.loadFailed', { message: state.detailError })}</p>` : ''}`
  }
  const { alert, events, gapAfter } = state.detail
  const allowed = (/** @type {keyof typeof ALLOWED} */ action) => ALLOWED[action].includes(alert.state)

  const submit = (/** @type {SubmitEvent} */ event) => {
    event.preventDefault()
    const form = /** @type {HTMLFormElement} */ (event.target)
    const action = /** @type {HTMLButtonElement | null} */ (event.submitter)?.value
    const note = String(new FormData(form).get('note') ?? '').trim()
    const outcome = String(new FormData(form).get('outcome') ?? '')
    if (!action || ui.busy) return
    if (action === 'resolve' && !outcome) {
      /** @type {HTMLSelectElement} */ (form.elements.namedItem('outcome')).focus()
      return
    }
    // The version shown: a resolve of an alert changed since (a press joined) is refused, not
    // carried out over what the operator never saw.
    const seen = Number.isFinite(alert.version) ? { expectedVersion: alert.version } : {}
    on.act(alert, action, { ...(note ? { note } : {}), ...(action === 'resolve' ? { outcome } : {}), ...seen }, form)
  }

  // While this alert's action is on its way the buttons say so (aria-disabled) but keep the
  // focus: a disabled button drops it to the page's top, and the keyboard user starts over.
  const actionButton = (/** @type {string} */ style, /** @type {keyof typeof ALLOWED} */ action) => html`
    <button class=${style} name="action" value=${action} ?disabled=${!allowed(action)} aria-disabled=${ui.busy ? 'true' : 'false'}>${t(`action.${action}`)}</button>`

  return keyed(alert.id, html`
    <div class="detail kind-${alert.kind} state-${alert.state}" data-alert-id=${alert.id}>
      <div class="detail-head">
        <span class="kind-badge">${t(`kind.${alert.kind}`)}</span>
        ${isEscalated(alert) ? html`<span class="escalated-badge">${t('escalated')}</span>` : ''}
        <span class="state-chip" data-state=${alert.state}>${t(`state.${alert.state}`)}</span>
        <button class="close" @click=${on.close} aria-label=${t('detail.close')}>×</button>
      </div>
      <h2 class="device-name" tabindex="-1">${alert.deviceName ?? alert.deviceId}</h2>
      <dl class="facts">
        <div><dt>${t('zone')}</dt><dd>${alert.zone}</dd></div>
        <div><dt>${t('detail.opened')}</dt><dd>${clock(alert.openedAt)} <small>(${zoneLabel()}, ${age(alert.openedAt, ui.now)})</small></dd></div>
        ${alert.kind === 'panic' ? html`
          <div><dt>${t('detail.lastPress')}</dt><dd>${clock(alert.lastPressAt)} · ${t('presses', { n: alert.pressCount })}</dd></div>` : ''}
        <div><dt>${t('detail.device')}</dt><dd><code>${alert.deviceId}</code></dd></div>
        ${alert.lat != null ? html`<div><dt>${t('detail.position')}</dt><dd>${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}</dd></div>` : ''}
        ${alert.outcome ? html`<div><dt>${t('detail.outcome')}</dt><dd>${t(`outcome.${alert.outcome}`)}</dd></div>` : ''}
      </dl>
      ${allowed('resolve') ? html`
        <form class="actions" @submit=${submit}>
          <label class="note"><span>${t('action.note')}</span><textarea name="note" rows="2" maxlength="2000"></textarea></label>
          <div class="action-row">
            ${actionButton('primary', 'acknowledge')}
            ${actionButton('secondary', 'dispatch')}
          </div>
          <div class="action-row resolve">
            <label><span>${t('action.outcome')}</span>
              <select name="outcome">
                <option value="">${t('action.chooseOutcome')}</option>
                ${OUTCOMES.map((o) => html`<option value=${o}>${t(`outcome.${o}`)}</option>`)}
              </select>
            </label>
            ${actionButton('resolve-button', 'resolve')}
          </div>
        </form>` : ''}
      ${ui.flash ? html`<p class="flash-message ${ui.flash.ok ? 'ok' : 'error'}" role="status">${ui.flash.text}</p>` : ''}
      <h3>${t('detail.timeline')} <small>(${zoneLabel()})</small></h3>
      <ol class="timeline">${timeline(alert, events, gapAfter).map((item) => html`
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

/**
 * Transitions and device events in time order. `gapAfter`: events after this instant and
 * before the newest ones were left out (an alert with more than a page of them); said there.
 */
function timeline (/** @type {any} */ alert, /** @type {any[]} */ events, /** @type {string | null} */ gapAfter = null) {
  const items = [
    ...(alert.transitions ?? []).map((/** @type {any} */ tr) => ({
      at: tr.at,
      kind: `state-${tr.to}`,
      note: tr.note,
      text: tr.to === 'open' && tr.from === null ? t('timeline.opened') : t('timeline.transition', { state: t(`state.${tr.to}`), actor: actorName(tr.actor) })
    })),
    ...events.map((e) => ({ at: e.time, kind: `event-${e.type}`, note: e.data?.report?.text ?? null, text: `${t(`event.${e.type}`)} (#${e.seq})`, cause: true })),
    ...(alert.escalatedAt ? [{ at: alert.escalatedAt, kind: 'escalated', note: null, text: t('timeline.escalated') }] : []),
    ...(gapAfter ? [{ at: gapAfter, kind: 'more', note: null, text: t('timeline.more') }] : [])
  ]
  // At the same instant the device's event comes first: it caused the transition.
  return items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || Number(Boolean(b.cause)) - Number(Boolean(a.cause)))
}
