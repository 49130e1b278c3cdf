/** The alert model (DESIGN.md §4): kinds, states, the legal transitions and outcomes. */
import type { EventType } from '../../protocol/index.js'

export const ALERT_KINDS = ['panic', 'tamper', 'device_offline', 'battery_low', 'power_lost'] as const
export type AlertKind = typeof ALERT_KINDS[number]

export const ALERT_STATES = ['open', 'acknowledged', 'dispatched', 'resolved', 'cancelled'] as const
export type AlertState = typeof ALERT_STATES[number]

/** States in which an alert still needs people: new presses coalesce into it. */
export const ACTIVE_STATES: readonly AlertState[] = ['open', 'acknowledged', 'dispatched']

/**
 * How far along its life each state is. An alert only ever moves forward (open → acknowledged
 * → dispatched → resolved, dispatch may skip acknowledged, open or acknowledged → cancelled;
 * an escalation stays open), never back.
 */
const STATE_STEP: Record<AlertState, number> = { open: 0, acknowledged: 1, dispatched: 2, resolved: 3, cancelled: 3 }

/**
 * An alert's version: it grows with every change to the alert, because each change moves one
 * of its terms up and none ever goes down (a transition moves the state forward, a press
 * joining adds to the press count, an escalation raises the level). Two reads of one alert
 * can reach a client in either order (the console reads an alert at each change it hears of):
 * the one with the higher version is the newer; equal versions hold the same alert.
 */
export function alertVersion (alert: { state: AlertState, pressCount: number, escalationLevel: number }): number {
  return alert.pressCount + alert.escalationLevel + STATE_STEP[alert.state]
}

export const OUTCOMES = ['real', 'false_alarm', 'prank', 'accidental', 'test'] as const
export type Outcome = typeof OUTCOMES[number]

export type OperatorAction = 'acknowledge' | 'dispatch' | 'resolve'

/** Operator actions: the states each may start from, and where it leads. */
export const ACTIONS: Record<OperatorAction, { from: readonly AlertState[], to: AlertState }> = {
  acknowledge: { from: ['open'], to: 'acknowledged' },
  dispatch: { from: ['open', 'acknowledged'], to: 'dispatched' },
  resolve: { from: ['open', 'acknowledged', 'dispatched'], to: 'resolved' }
}

/** Which device events open (or join) which kind of alert. */
export const ALERT_KIND_OF_EVENT: Partial<Record<EventType, AlertKind>> = {
  press: 'panic',
  hold: 'panic',
  tamper: 'tamper',
  battery_low: 'battery_low',
  power_lost: 'power_lost'
}

/** The device hears the states of alerts it raised by a press; warnings stay between us and operators. */
export const DEVICE_FACING_KINDS: readonly AlertKind[] = ['panic']
