/**
 * Keyboard focus around the alert detail. Selecting a card used to leave focus on the card, with
 * every later card and map marker between it and the action buttons; acting dropped focus to
 * the page (the buttons were disabled under it), so the next Tab started at the top.
 */

/** Whether focus was lost: on the page itself, or on a control that was disabled under it. */
const focusLost = () => {
  const active = /** @type {HTMLElement | null} */ (document.activeElement)
  return !active || active === document.body || active.matches(':disabled') || !active.isConnected
}

/** Focus on the detail's heading (the device's name): the next Tab reaches the note and the actions. */
export function focusDetailHeading (/** @type {HTMLElement} */ panel) {
  const heading = /** @type {HTMLElement | null} */ (panel.querySelector('.detail h2'))
  heading?.focus()
  return Boolean(heading)
}

/**
 * After an action the button pressed may be disabled (an acknowledged alert cannot be
 * acknowledged again): focus goes to the next action it allows, or to the heading. Focus that
 * the operator moved elsewhere meanwhile stays where it is.
 */
export function keepFocusInDetail (/** @type {HTMLElement} */ panel) {
  if (!focusLost()) return
  const next = /** @type {HTMLElement | undefined} */ ([...panel.querySelectorAll('.actions button')].find((b) => !(/** @type {HTMLButtonElement} */ (b).disabled)))
  if (next) next.focus()
  else focusDetailHeading(panel)
}

/** Back to the card of an alert whose detail was closed (its close button is gone with it). */
export function focusCard (/** @type {HTMLElement} */ list, /** @type {string} */ id) {
  const card = /** @type {HTMLElement | null} */ (list.querySelector(`.alert-card[data-alert-id="${CSS.escape(id)}"] .card-button`))
  card?.focus()
}
