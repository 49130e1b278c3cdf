/**
 * One hour of a ward, written down: 24 devices in 4 zones sending heartbeats, panic presses
 * that operators acknowledge, dispatch and resolve (real, false alarms, pranks, a drill), a
 * tamper, a low battery, a counter cancel with a wrong then a right PIN, resident reports, two
 * announcements, refused publishes, two flaky devices and a zone whose power fails.
 * Times are seconds after the hour starts. The plan is data: the test checks the dashboards
 * against what it says happened.
 */
import type { Outcome } from '../../../server/alerts/model.js'
import type { EventType } from '../../../protocol/index.js'

export type DeviceKind = 'button' | 'kiosk' | 'counter'
export interface SimDevice { id: string, kind: DeviceKind, zone: string, lat: number, lon: number, pin?: string }

export const ZONES = ['ben-nghe', 'ben-thanh', 'da-kao', 'tan-dinh'] as const
const CENTER: Record<string, [number, number]> = {
  'ben-nghe': [10.7769, 106.7009], 'ben-thanh': [10.7725, 106.6980], 'da-kao': [10.7905, 106.6990], 'tan-dinh': [10.7925, 106.6890]
}
export const COUNTER_PIN = '4321'
export const HOUR_S = 3600

export const DEVICES: SimDevice[] = ZONES.flatMap((zone) => {
  const [lat, lon] = CENTER[zone]!
  const at = (i: number) => ({ lat: lat + 0.0012 * Math.cos(i), lon: lon + 0.0012 * Math.sin(i) })
  return [
    ...[1, 2, 3, 4].map((n) => ({ id: `btn-${zone}-${n}`, kind: 'button' as const, zone, ...at(n) })),
    { id: `kiosk-${zone}`, kind: 'kiosk' as const, zone, ...at(5) },
    { id: `shop-${zone}`, kind: 'counter' as const, zone, ...at(6), pin: COUNTER_PIN }
  ]
})

/** The zone whose power fails 20 minutes before the end: five of its devices go silent. */
export const OUTAGE = { zone: 'tan-dinh', at: 2400, devices: ['btn-tan-dinh-1', 'btn-tan-dinh-2', 'btn-tan-dinh-3', 'btn-tan-dinh-4', 'kiosk-tan-dinh'] }
/** Devices that miss heartbeats for a while (heartbeat gaps), then come back. */
export const FLAKY: Record<string, [number, number]> = { 'btn-da-kao-2': [1200, 1500], 'btn-ben-nghe-3': [1800, 1980] }

export interface OperatorStep { after: number, action: 'acknowledge' | 'dispatch' | 'resolve', outcome?: Outcome }
export interface Incident {
  ref: string
  device: string
  at: number
  type: Extract<EventType, 'press' | 'hold' | 'tamper' | 'battery_low'>
  /** Further presses that coalesce into the same alert, seconds after `at`. */
  repeats?: number[]
  operator: OperatorStep[]
  /** Device cancels, seconds after `at`, with the PIN entered. */
  cancels?: Array<{ after: number, pin: string }>
}

const respond = (ack: number, resolve: number, outcome: Outcome, dispatch?: number): OperatorStep[] => [
  { after: ack, action: 'acknowledge' },
  ...(dispatch ? [{ after: dispatch, action: 'dispatch' as const }] : []),
  { after: resolve, action: 'resolve', outcome }
]

export const INCIDENTS: Incident[] = [
  { ref: 'p1', device: 'btn-ben-nghe-1', at: 300, type: 'press', repeats: [10, 20], operator: respond(45, 900, 'real', 90) },
  { ref: 'p2', device: 'btn-ben-thanh-2', at: 600, type: 'press', operator: respond(30, 240, 'prank') },
  { ref: 'p3', device: 'shop-da-kao', at: 900, type: 'hold', operator: respond(20, 1200, 'real', 60) },
  { ref: 'p4', device: 'btn-ben-thanh-2', at: 1000, type: 'press', operator: respond(60, 180, 'prank') },
  { ref: 'p5', device: 'btn-da-kao-1', at: 1300, type: 'press', operator: respond(200, 600, 'false_alarm') },
  { ref: 't1', device: 'shop-tan-dinh', at: 1500, type: 'tamper', operator: respond(60, 300, 'real') },
  { ref: 'p6', device: 'btn-ben-thanh-2', at: 1600, type: 'press', operator: respond(25, 120, 'accidental') },
  { ref: 'p7', device: 'btn-tan-dinh-3', at: 1900, type: 'press', operator: respond(90, 1000, 'real', 120) },
  { ref: 'b1', device: 'btn-ben-nghe-2', at: 2000, type: 'battery_low', operator: [{ after: 120, action: 'acknowledge' }] },
  // A drill left waiting long enough to escalate: the Response dashboard leaves it out all the same.
  { ref: 'd1', device: 'btn-ben-nghe-4', at: 2200, type: 'press', operator: respond(130, 300, 'test') },
  { ref: 'c1', device: 'shop-ben-thanh', at: 2500, type: 'press', operator: [], cancels: [{ after: 10, pin: '0000' }, { after: 20, pin: COUNTER_PIN }] },
  { ref: 'p8', device: 'btn-da-kao-3', at: 2700, type: 'press', operator: respond(50, 500, 'real', 100) },
  { ref: 'p9', device: 'shop-ben-nghe', at: 3000, type: 'press', operator: [{ after: 35, action: 'acknowledge' }, { after: 70, action: 'dispatch' }] },
  // Still open at the end: one waiting 5 minutes (the Grafana rule must fire), one 1 minute (it must not).
  { ref: 'p10', device: 'btn-ben-thanh-1', at: 3300, type: 'press', repeats: [15], operator: [] },
  { ref: 'p11', device: 'btn-da-kao-4', at: 3540, type: 'press', operator: [] }
]

export const REPORTS = [
  { ref: 'r1', device: 'kiosk-ben-nghe', at: 400, category: 'noise', text: 'Karaoke sau 23 giờ ở hẻm 12', closeAfter: 1100 },
  { ref: 'r2', device: 'kiosk-ben-thanh', at: 800, category: 'theft', text: 'Bike stolen near the market gate' },
  { ref: 'r3', device: 'kiosk-da-kao', at: 1100, category: 'lighting', text: 'Đèn đường hỏng trước số 40', closeAfter: 1400 },
  { ref: 'r4', device: 'kiosk-ben-nghe', at: 1700, category: 'traffic', text: 'Xe đậu chắn lối thoát hiểm' },
  { ref: 'r5', device: 'kiosk-tan-dinh', at: 2100, category: 'drugs', text: 'Suspicious dealing at the park at night' },
  { ref: 'r6', device: 'kiosk-ben-thanh', at: 2600, category: 'noise', text: 'Construction noise before 6am' },
  { ref: 'r7', device: 'kiosk-da-kao', at: 3100, category: 'other', text: 'Chó thả rông cắn người' }
] as const

export const ANNOUNCEMENTS = [
  { at: 1200, zone: 'ben-nghe', lang: 'vi', title: 'Cúp nước', body: 'Cúp nước từ 22 giờ đến 4 giờ sáng mai.' },
  { at: 2800, zone: 'tan-dinh', lang: 'en', title: 'Power outage', body: 'Crews are restoring power in Tan Dinh; call 113 in an emergency.' }
]

/** Publishes the gateway refused; `device` undefined: the client named no registered device. */
export const DEAD_LETTERS = [
  { at: 700, device: 'btn-ben-thanh-3', reason: 'payload is not JSON' },
  { at: 1400, device: undefined, reason: 'invalid event: type: must be a known event type' },
  { at: 2300, device: 'btn-ben-thanh-3', reason: 'payload too large: 5120 bytes (max 4096)' },
  { at: 2350, device: 'btn-ben-thanh-3', reason: 'payload is not JSON' }
]

/** Battery of a device at a time: each drains slowly from its own start level; two are weak. */
export function batteryAt (deviceIndex: number, t: number): number {
  const start = [9, 17, 26].includes(deviceIndex) ? 18 : 100 - ((deviceIndex * 13) % 55)
  return Math.max(1, Math.round(start - t / 900))
}

/** Whether a device sends its heartbeat at `t` (silent in an outage or a flaky spell). */
export function sendsHeartbeat (deviceId: string, t: number): boolean {
  if (OUTAGE.devices.includes(deviceId) && t >= OUTAGE.at) return false
  const flaky = FLAKY[deviceId]
  return !(flaky && t >= flaky[0] && t < flaky[1])
}
