/**
 * What the simulated people do, as timed steps over the run (`span`). Heartbeats run on their
 * own in every scenario; these are the events around them.
 */
import type { Device } from '../device/device.js'
import type { DeviceKind } from '../device/kinds.js'
import type { FleetMember } from './provision.js'
import type { ScenarioName } from './options.js'

export interface SimDevice {
  device: Device
  member: FleetMember
}

export interface Step {
  /** ms from the start of the run */
  at: number
  what: string
  run(): void
}

type Scenario = (fleet: SimDevice[], span: number, random: () => number) => Step[]

/** The n-th device of a kind; any device when the fleet has none of that kind. */
function pick (fleet: SimDevice[], kind: DeviceKind, n: number): SimDevice {
  const ofKind = fleet.filter((d) => d.member.kind === kind)
  const from = ofKind.length > 0 ? ofKind : fleet
  return from[n % from.length]!
}

const step = (at: number, what: string, run: () => void): Step => ({ at: Math.max(0, Math.round(at)), what, run })

function pressBurst (d: SimDevice, at: number, presses: number, gapMs: number, label: string): Step[] {
  return Array.from({ length: presses }, (_, i) => step(at + i * gapMs, `${label} ${i + 1}/${presses} on ${d.member.id}`, () => d.device.press()))
}

function hold (d: SimDevice, at: number, what: string): Step[] {
  return [step(at, what, () => d.device.buttonDown()), step(at + 2000, `${what} (released)`, () => d.device.buttonUp())]
}

/** A day in the ward, compressed into the run: mostly heartbeats, a few things happening. */
const demo: Scenario = (fleet, span) => {
  const counter = pick(fleet, 'counter', 0)
  const street = fleet.filter((d) => d.member.kind === 'button')
  const goesOffline = street.at(-1) ?? fleet.at(-1)!
  return [
    step(span * 0.05, `pedestrian presses ${pick(fleet, 'button', 0).member.id}`, () => pick(fleet, 'button', 0).device.press()),
    step(span * 0.15, `accidental press at ${counter.member.id}`, () => counter.device.press()),
    step(span * 0.15 + 1500, `shop owner cancels with PIN at ${counter.member.id}`, () => counter.device.cancel(counter.member.pin ?? '0000')),
    step(span * 0.3, `noise report at ${pick(fleet, 'kiosk', 0).member.id}`, () => pick(fleet, 'kiosk', 0).device.report('noise', 'Hát karaoke quá 22 giờ ở hẻm 12 / karaoke after 10 pm in alley 12')),
    ...pressBurst(pick(fleet, 'button', 1), span * 0.4, 8, 150, 'prank press'),
    ...hold(pick(fleet, 'counter', 1), span * 0.5, `silent hold-up alarm at ${pick(fleet, 'counter', 1).member.id}`),
    step(span * 0.6, `monthly self-test of ${pick(fleet, 'button', 2).member.id}`, () => pick(fleet, 'button', 2).device.test()),
    step(span * 0.7, `tamper at ${counter.member.id}`, () => counter.device.tamper()),
    step(span * 0.8, `${goesOffline.member.id} loses power`, () => { void goesOffline.device.powerCut() }),
    step(span * 0.9, `lighting report at ${pick(fleet, 'kiosk', 1).member.id}`, () => pick(fleet, 'kiosk', 1).device.report('lighting', 'Đèn đường hỏng trước số 45 / street light out at no. 45'))
  ]
}

/** Every device presses once, within the first tenth of the run: an alert storm. */
const burst: Scenario = (fleet, span, random) =>
  fleet.map((d) => step(random() * span * 0.1, `press ${d.member.id}`, () => d.device.press()))

/** A fifth of the street buttons get hammered: ten presses in three seconds, at random times. */
const prank: Scenario = (fleet, span, random) => {
  const buttons = fleet.filter((d) => d.member.kind === 'button')
  const victims = (buttons.length > 0 ? buttons : fleet).filter((_, i) => i % 5 === 0)
  return victims.flatMap((d) => pressBurst(d, random() * span * 0.8, 10, 300, 'prank press'))
}

/** Links drop at random; a third of the devices are pressed while offline (queued, sent on reconnect). */
const flaky: Scenario = (fleet, span, random) => fleet.flatMap((d, i) => {
  const steps: Step[] = []
  for (let k = 0; k < 2; k++) {
    const at = random() * span * 0.8
    steps.push(step(at, `link drops at ${d.member.id}`, () => d.device.dropLink()))
    if (i % 3 === 0) steps.push(step(at + 50, `press during outage at ${d.member.id}`, () => d.device.press()))
  }
  return steps
})

/** Every link drops at once, twice: a reconnect storm, with presses made in the middle of it. */
const storm: Scenario = (fleet, span) => [0.3, 0.6].flatMap((f) => [
  step(span * f, 'all links drop', () => { for (const d of fleet) d.device.dropLink() }),
  ...fleet.filter((_, i) => i % 10 === 0).map((d) => step(span * f + 20, `press during the storm at ${d.member.id}`, () => d.device.press()))
])

const REPORTS = [
  ['noise', 'Tiếng ồn công trình ban đêm / construction noise at night'],
  ['theft', 'Mất xe máy trước chợ / motorbike stolen at the market'],
  ['drugs', 'Nghi vấn tụ tập sử dụng ma túy / suspected drug use gathering'],
  ['traffic', 'Kẹt xe kéo dài ở ngã tư / long traffic jam at the crossroads'],
  ['lighting', 'Đèn đường không sáng / street light out'],
  ['other', 'Cây đổ chắn lối đi / fallen tree blocking the path']
] as const

/** Residents file reports at every kiosk, every category, spread over the run. */
const kioskReports: Scenario = (fleet, span, random) => {
  const kiosks = fleet.filter((d) => d.member.kind === 'kiosk')
  return (kiosks.length > 0 ? kiosks : fleet).flatMap((d, i) => [0, 1, 2].map((k) => {
    const [category, text] = REPORTS[(i + k) % REPORTS.length]!
    return step(random() * span * 0.9, `${category} report at ${d.member.id}`, () => d.device.report(category, text))
  }))
}

export const SCENARIO_STEPS: Record<ScenarioName, Scenario> = {
  demo, burst, prank, flaky, storm, 'kiosk-reports': kioskReports
}
