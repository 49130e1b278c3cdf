/**
 * Which answer about an alert is the newest. Reads of one alert cross on their way (two quick
 * changes, each read at once; a reload's lists beside them), so the last to land is not always
 * the newest: each answer carries the alert's `version`, which grows with every change
 * (server/alerts/model.ts), and one older than what is held is dropped.
 *
 * Closed alerts are remembered too: states only move forward, so an answer that shows a closed
 * alert active again is an old one, whatever its number (a server without versions included).
 * Without this, a resolved case came back as a NEW panic, banner, beep and reminders, when the
 * read made before its resolution landed last.
 */
/** Closed alerts remembered (the oldest forgotten first): far more than a shift closes. */
const KEEP_CLOSED = 5000

export function createAlertVersions () {
  /** Active alerts held: their version, and when they were last taken (see `mark`). */
  /** @type {Map<string, { version: number | null, at: number }>} */
  const held = new Map()
  /** Closed alerts: their version (Infinity: deleted, never to come back). */
  /** @type {Map<string, number | null>} */
  const closed = new Map()
  /**
   * Alerts a reload found missing from the active lists: when (see `mark`). States only move
   * forward, so an answer read before that showing it active is an old one (unless the list
   * was cut short: a later read showing it active is taken).
   * @type {Map<string, number>}
   */
  const dropped = new Map()
  let clock = 0

  const versionOf = (/** @type {any} */ alert) => (Number.isFinite(alert?.version) ? Number(alert.version) : null)
  const older = (/** @type {number | null} */ a, /** @type {number | null | undefined} */ b) => a !== null && b != null && a < b

  function close (/** @type {string} */ id, /** @type {number | null} */ version) {
    held.delete(id)
    closed.delete(id)
    closed.set(id, version)
    if (closed.size > KEEP_CLOSED) closed.delete(/** @type {string} */ (closed.keys().next().value))
  }

  return {
    /**
     * Whether to take this answer about an alert: not when it is older than what is held,
     * nor when it shows active an alert already seen closed, nor one a reload found missing
     * after this answer's read started (`readAt`, a `mark` taken before the read was sent).
     */
    accept (/** @type {any} */ alert, /** @type {boolean} */ active, /** @type {number} */ readAt = Infinity) {
      const version = versionOf(alert)
      if (closed.has(alert.id) && (active || older(version, closed.get(alert.id)))) return false
      if (active && readAt < (dropped.get(alert.id) ?? -Infinity)) return false
      if (older(version, held.get(alert.id)?.version)) return false
      if (active) held.set(alert.id, { version, at: ++clock })
      else close(alert.id, version)
      return true
    },
    /**
     * A moment to compare with `heldSince` (what was taken after it is newer than a list read
     * after it), and to stamp a read with when it started (`accept`'s `readAt`).
     */
    mark () { return ++clock },
    /** When the alert was last taken (0: not held). */
    heldSince (/** @type {string} */ id) { return held.get(id)?.at ?? 0 },
    /**
     * No longer held (left the active lists), without saying it closed (a list cut short leaves
     * out active alerts too): an answer showing it active from a read started before now (a
     * `mark` smaller than now's) is no longer taken; one read after is.
     */
    forget (/** @type {string} */ id) {
      held.delete(id)
      dropped.delete(id)
      dropped.set(id, ++clock)
      if (dropped.size > KEEP_CLOSED) dropped.delete(/** @type {string} */ (dropped.keys().next().value))
    },
    /** The server no longer has it: nothing about it is taken again. */
    gone (/** @type {string} */ id) { close(id, Infinity) },
    /** Whether answer `a` is older than answer `b` about the same alert. */
    isOlder (/** @type {any} */ a, /** @type {any} */ b) { return older(versionOf(a), versionOf(b)) }
  }
}
