/** Times and ages in the current language (the browser's time zone). */
import { language, t } from './i18n.js'

const locale = () => (language() === 'vi' ? 'vi-VN' : 'en-GB')

/** "3 phút trước" / "3 minutes ago", rounded to the largest sensible unit. */
export function age (/** @type {string} */ iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' })
  const abs = Math.abs(seconds)
  if (abs < 60) return rtf.format(seconds, 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  return rtf.format(Math.round(seconds / 86400), 'day')
}

/** "14:03:27" today, "28/11 14:03" on another day. */
export function clock (/** @type {string | null | undefined} */ iso) {
  if (!iso) return t('never')
  const date = new Date(iso)
  const today = new Date().toDateString() === date.toDateString()
  return new Intl.DateTimeFormat(locale(), today
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
    : { day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' }).format(date)
}

export const pressCount = (/** @type {number} */ n) => t('presses', { n })
