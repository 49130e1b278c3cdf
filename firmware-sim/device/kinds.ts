/** How each kind of device behaves by default (DESIGN.md §1). */
export type DeviceKind = 'button' | 'kiosk' | 'counter'
export const DEVICE_KINDS: readonly DeviceKind[] = ['button', 'kiosk', 'counter']

export interface KindProfile {
  /**
   * Heartbeat period: the gateway's interval for the kind (`HEARTBEAT_INTERVAL_S`, 30 s by
   * default; gateway/config.ts DEFAULT_HEARTBEAT_INTERVALS_MS). The gateway calls a connected
   * device offline after 1.5 intervals without an event, so a device beating at a longer
   * period than its gateway expects is reported offline every other beat.
   */
  heartbeatMs: number
  /** Runs on a battery that drains (street poles on solar; counters on a backup cell). */
  battery: boolean
  /** Silent alarm: no buzzer, no voice, whatever happens. */
  silent: boolean
  /** Subscribes to its zone's announcements and shows them. */
  screen: boolean
}

export const KIND_PROFILES: Readonly<Record<DeviceKind, KindProfile>> = Object.freeze({
  button: { heartbeatMs: 30_000, battery: true, silent: false, screen: false },
  kiosk: { heartbeatMs: 30_000, battery: false, silent: false, screen: true },
  counter: { heartbeatMs: 30_000, battery: true, silent: true, screen: false }
})

/**
 * When the first heartbeat after start goes: at a random phase, so a fleet powered on together
 * does not beat in unison, but within one period, so the first beat after connecting is never
 * later than the ones after it (the gateway counts silence from the connect).
 */
export function firstHeartbeatDelay (periodMs: number, random: () => number = Math.random): number {
  return Math.min(Math.max(random(), 0), 1) * periodMs
}

/** A press held this long is a `hold` (DESIGN.md §3). */
export const HOLD_MS = 1500

/** How long a self-test that got through shows its cue before the LED shows the alarm's state again. */
export const SELF_TEST_CUE_MS = 2000

/** Battery level below which the device reports `battery_low` (once per discharge). */
export const BATTERY_LOW_PERCENT = 20

export const FIRMWARE_VERSION = 'sos-fw-1.0.0'
