/**
 * Times and ages in the current language, in the ward's time zone (the server's
 * CONSOLE_TIME_ZONE, see `setTimeZone`), not the PC's: a console on a PC set to another zone
 * (a laptop from elsewhere, a misconfigured kiosk PC) showed every time shifted, unlabeled,
 * beside the times people report on the radio. Times say which zone they are in.
 */
import { language, t } from './i18n.js'

const locale = () => (language() === 'vi' ? 'vi-VN' : 'en-GB')
/** @type {string | undefined} undefined: the browser's own */
let timeZone

/** The ward's IANA time zone (e.g. Asia/Ho_Chi_Minh); one this browser does not know is ignored. */
export function setTimeZone (/** @type {string | null | undefined} */ zone) {
  try {
    timeZone = zone ? new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone : undefined
  } catch {
    timeZone = undefined
  }
}

const format = (/** @type {Intl.DateTimeFormatOptions} */ options, /** @type {Date} */ date) =>
  new Intl.DateTimeFormat(locale(), { ...options, timeZone }).format(date)

/** The calendar day of an instant in the ward, to tell "today" there. */
const wardDay = (/** @type {Date} */ date) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(date)

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

/** "14:03:27" today (in the ward), "28/11 14:03" on another day. */
export function clock (/** @type {string | null | undefined} */ iso) {
  if (!iso) return t('never')
  const date = new Date(iso)
  const today = wardDay(new Date()) === wardDay(date)
  return format(today
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
    : { day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' }, date)
}

/** Date, time and zone in full, for a tooltip: "28/11/2025 14:03:27 GMT+7". */
export function fullTime (/** @type {string} */ iso) {
  return format({ day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' }, new Date(iso))
}

/** The zone's short name now ("GMT+7"), to label times shown without it. */
export function zoneName (now = new Date()) {
  return new Intl.DateTimeFormat(locale(), { timeZone, timeZoneName: 'short' }).formatToParts(now)
    .find((part) => part.type === 'timeZoneName')?.value ?? ''
}

/** "giờ GMT+7" / "GMT+7 time": a label for a column or section of times. */
export const zoneLabel = () => t('time.zone', { zone: zoneName() })

/** The wall-clock fields of an instant in the ward, as UTC milliseconds (to compute its offset). */
function wardWallClock (/** @type {number} */ ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
  return Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second))
}

/** A `datetime-local` value ("2025-11-28T14:03") for an instant, in the ward's time. */
export function wardInputValue (/** @type {number} */ ms) {
  return new Date(wardWallClock(ms)).toISOString().slice(0, 16)
}

/** The instant a `datetime-local` value names in the ward's time (the inverse of `wardInputValue`). */
export function fromWardInput (/** @type {string} */ value) {
  const wall = Date.parse(`${value}Z`)
  // The zone's offset at a first guess, then at the result (it differs across a DST change).
  let ms = wall - (wardWallClock(wall) - wall)
  ms = wall - (wardWallClock(ms) - ms)
  return ms
}

export const pressCount = (/** @type {number} */ n) => t('presses', { n })
