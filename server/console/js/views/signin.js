/** The sign-in form: an operator token, kept for this tab or remembered on this computer. */
import { html } from '/vendor/lit-html/lit-html.js'
import { LANGUAGES, language, t } from '../i18n.js'

/**
 * @param {{ busy: boolean, error: string | null }} ui
 * @param {{ submit(token: string, remember: boolean): void, setLanguage(lang: string): void }} on
 */
export function signinView (ui, on) {
  const submit = (/** @type {SubmitEvent} */ event) => {
    event.preventDefault()
    const data = new FormData(/** @type {HTMLFormElement} */ (event.target))
    on.submit(String(data.get('token') ?? '').trim(), data.get('remember') === 'on')
  }
  return html`
    <form class="signin-card" @submit=${submit}>
      <div class="brand"><span class="brand-mark" aria-hidden="true">SOS</span>
        <div><h1>${t('app.title')}</h1><p>${t('app.subtitle')}</p></div></div>
      <h2>${t('signin.title')}</h2>
      <label><span>${t('signin.token')}</span>
        <input name="token" type="password" required autocomplete="current-password" autofocus></label>
      <label class="check"><input name="remember" type="checkbox"> ${t('signin.remember')}</label>
      ${ui.error ? html`<p class="flash-message error" role="alert">${ui.error}</p>` : ''}
      <button class="primary" ?disabled=${ui.busy}>${t('signin.submit')}</button>
      <div class="lang-switch" role="group" aria-label="Language">
        ${LANGUAGES.map((lang) => html`
          <button type="button" lang=${lang} aria-pressed=${language() === lang ? 'true' : 'false'} @click=${() => on.setLanguage(lang)}>${t(`lang.${lang}`)}</button>`)}
      </div>
    </form>`
}
