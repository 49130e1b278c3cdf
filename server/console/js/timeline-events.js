/**
 * What an alert's device sent while the alert was open, for its timeline. Asked of the server
 * without heartbeats and oldest first, from a little before the alert opened: the event that
 * raised the alert is always there, however long it stayed open. (The newest 500 events with
 * heartbeats filtered out afterwards lost it once the alert was open 500 heartbeats, about 8 h.)
 */
const PAGE = 500
/** Added when the alert holds more than a page of events: what the device did last. */
const NEWEST = 100

/**
 * @param {(method: string, path: string) => Promise<any>} api
 * @param {any} alert
 * @returns {Promise<{ events: any[], gapAfter: string | null }>} `gapAfter`: events after this time and before the newest were left out
 */
export async function timelineEvents (api, alert) {
  const end = alert.resolvedAt ?? alert.cancelledAt
  // A little before and after: the press that opened (or closed) it carries the same instant.
  const from = new Date(Date.parse(alert.openedAt) - 1000).toISOString()
  const to = end ? new Date(Date.parse(end) + 1000).toISOString() : null
  const path = (/** @type {'asc' | 'desc'} */ order, /** @type {number} */ limit) => {
    const query = new URLSearchParams({ deviceId: alert.deviceId, excludeType: 'heartbeat', from, order, limit: String(limit) })
    if (to) query.set('to', to)
    return `/v1/events?${query}`
  }
  const first = await api('GET', path('asc', PAGE))
  if (first.length < PAGE) return { events: first, gapAfter: null }
  const newest = await api('GET', path('desc', NEWEST))
  const firstIds = new Set(first.map((/** @type {any} */ e) => e.eventId))
  const added = newest.filter((/** @type {any} */ e) => !firstIds.has(e.eventId))
  // The two pages meet when the newest holds one of the first page's events.
  const meet = added.length < newest.length
  return { events: [...first, ...added], gapAfter: meet ? null : first.at(-1).time }
}
