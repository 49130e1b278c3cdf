/** The alert model (DESIGN.md §4): kinds, states, the legal transitions and outcomes. */
import type { EventType } from '../../protocol/index.js'

export const ALERT_KINDS = ['panic', 'tamper', 'device_offline', 'battery_low', 'power_lost'] as const
export type AlertKind = typeof ALERT_KINDS[number]

export const ALERT_STATES = ['open', 'acknowledged', 'dispatched', 'resolved', 'cancelled'] as const
export type AlertState = typeof ALERT_STATES[number]

/** States in which an alert still needs people: new presses coalesce into it. */
export const ACTIVE_STATES: readonly AlertState[] = ['open', 'acknowledged', 'dispatched']

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
