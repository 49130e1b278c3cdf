/**
 * The announcement composer (the "Inform" part): a message to every kiosk of one zone.
 * Defaults are bound as attributes, not properties: a re-render never overwrites what the
 * operator typed, and `form.reset()` after sending brings the defaults back.
 */
import { html } from '/vendor/lit-html/lit-html.js'
import { language, t } from '../i18n.js'
import { fromWardInput, wardInputValue, zoneLabel } from '../format.js'

/**
 * @param {any} state
 * @param {{ busy: boolean, message: { ok: boolean, text: string } | null }} ui
 * @param {{ send(body: { zone: string, title: string, body: string, lang: string, expiresAt: string }, form: HTMLFormElement): void }} on
 */
export function announceView (state, ui, on) {
  const devices = [...state.devices.values()]
  const kioskZones = new Set(devices.filter((d) => d.kind === 'kiosk').map((d) => d.zone))
  const zones = [...new Set(devices.map((d) => d.zone))].sort((a, b) => Number(kioskZones.has(b)) - Number(kioskZones.has(a)) || a.localeCompare(b))
  const submit = (/** @type {SubmitEvent} */ event) => {
    event.preventDefault()
    const form = /** @type {HTMLFormElement} */ (event.target)
    const data = new FormData(form)
    on.send({
      zone: String(data.get('zone')).trim(),
      title: String(data.get('title')).trim(),
      body: String(data.get('body')).trim(),
      lang: String(data.get('lang')),
      // Typed in the ward's time, as every time the console shows (not the PC's zone).
      expiresAt: new Date(fromWardInput(String(data.get('expiresAt')))).toISOString()
    }, form)
  }
  return html`
    <div class="page narrow">
      <h2>${t('announce.title')}</h2>
      <p class="help">${t('announce.help')}</p>
      <form class="composer" @submit=${submit}>
        <label><span>${t('announce.zone')}</span>
          <input name="zone" list="zones" required pattern="[a-z0-9][a-z0-9\\-]{0,63}" autocomplete="off" value=${zones[0] ?? ''}>
          <datalist id="zones">${zones.map((z) => html`<option value=${z}></option>`)}</datalist>
        </label>
        <label><span>${t('announce.heading')}</span><input name="title" required maxlength="120"></label>
        <label><span>${t('announce.body')}</span><textarea name="body" required rows="5" maxlength="1000"></textarea></label>
        <div class="two">
          <label><span>${t('announce.lang')}</span>
            <select name="lang">
              <option value="vi" ?selected=${language() === 'vi'}>${t('lang.vi')}</option>
              <option value="en" ?selected=${language() === 'en'}>${t('lang.en')}</option>
            </select>
          </label>
          <label><span>${t('announce.expires')} <small>(${zoneLabel()})</small></span>
            <input name="expiresAt" type="datetime-local" required value=${wardInputValue(Date.now() + 24 * 3600_000)}>
          </label>
        </div>
        <button class="primary" ?disabled=${ui.busy}>${t('announce.send')}</button>
      </form>
      ${ui.message ? html`<p class="flash-message ${ui.message.ok ? 'ok' : 'error'}" role="status">${ui.message.text}</p>` : ''}
    </div>`
}
