/**
 * Signing in: the form (a token typed, kept for this tab or remembered), a wall display's link
 * (`#token=…`, checked again while the server does not answer), and the alarm of a display
 * signed out because its token was revoked.
 */
import { render } from '/vendor/lit-html/lit-html.js'
import { setLanguage, t } from './i18n.js'
import { checkToken } from './api.js'
import { beep, unlockAudio } from './sound.js'
import { createStandingAlarm } from './standing-alarm.js'
import { signinView } from './views/signin.js'

/** How often the signed-out tone repeats (as the lost-connection one). */
const ALARM_REPEAT_MS = 15_000
/** A link's token the server could not check (it did not answer) is checked again, up to this far apart. */
const MAX_LINK_RETRY_MS = 30_000

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))

/**
 * @param {(token: string, remember: boolean) => void} onToken a token the server took
 */
export function createSignin (onToken) {
  const signin = { busy: false, error: /** @type {string | null} */ (null), submitted: false }
  /** Set while signed out because the token was revoked: a wall display must not go quiet. */
  let signedOutAlarm = /** @type {ReturnType<typeof createStandingAlarm> | null} */ (null)

  function draw () {
    document.title = `${signedOutAlarm?.raised() ? `⚠ ${t('title.signedOut')} · ` : ''}${t('app.title')}`
    render(signinView(signin, {
      submit: async (token, remember) => {
        signin.submitted = true
        unlockAudio() // this click is the gesture that lets the console beep later
        signin.busy = true
        draw()
        const status = await checkToken(token)
        signin.busy = false
        if (status === 200) {
          signedOutAlarm?.stop()
          onToken(token, remember)
        } else {
          signin.error = status === 0 || status >= 500 ? t('signin.unreachable') : t('signin.invalid')
          draw()
        }
      },
      setLanguage: (lang) => { setLanguage(/** @type {'vi'|'en'} */ (lang)); draw() }
    }), $('signin'))
  }

  /** The form, with a message; `alarm`: signed out because the token was revoked. */
  function show (/** @type {string | null} */ error = null, { alarm = false } = {}) {
    signin.error = error
    $('console').hidden = true
    $('signin').hidden = false
    if (alarm && !signedOutAlarm) {
      signedOutAlarm = createStandingAlarm({ beep: () => beep('lost'), afterMs: 0, repeatMs: ALARM_REPEAT_MS, onChange: draw })
      signedOutAlarm.set('signedOut')
      // Someone is at the screen: the tone stops, the title and the message stay until sign-in.
      const silence = () => signedOutAlarm?.silence()
      $('signin').addEventListener('pointerdown', silence, { once: true })
      $('signin').addEventListener('keydown', silence, { once: true })
    }
    draw()
  }

  /**
   * A wall display's link with a token not kept yet. Only 401/403 mean a bad token; a server
   * that does not answer (502 while it starts behind a proxy, a network still coming up after
   * a power cut) is asked again, with backoff, instead of leaving the display on the form for good.
   */
  async function fromLink (/** @type {string} */ token) {
    for (let attempt = 0; ; attempt++) {
      const status = await checkToken(token)
      if (signin.submitted) return // someone typed a token meanwhile: theirs wins
      if (status === 200) return onToken(token, true)
      if (status !== 0 && status < 500) return show(t('signin.invalid'))
      show(t('signin.retrying'))
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000 * 2 ** attempt, MAX_LINK_RETRY_MS)))
      if (signin.submitted) return
    }
  }

  return { show, fromLink }
}
