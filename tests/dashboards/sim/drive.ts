/**
 * Plays the scenario through the server's real HTTP API, in time order on the simulated clock:
 * devices are provisioned by an admin, events arrive as gateway batches on `POST /v1/ingest`
 * (with presence changes and dead letters), operators act on `/v1/alerts/{id}/...`, close
 * report tickets and publish announcements. Nothing is written to the database directly.
 */
import type { FastifyInstance } from 'fastify'
import { eventIdOf, type DeviceEvent, type EventType, type GatewayEvent, type IngestBatch, type IngestResult } from '../../../protocol/index.js'
import type { SimClock } from './clock.js'
import {
  ANNOUNCEMENTS, DEAD_LETTERS, DEVICES, HOUR_S, INCIDENTS, OUTAGE, REPORTS, batteryAt, sendsHeartbeat
} from './scenario.js'

const GATEWAY_ID = 'gw-sim'
/**
 * Heartbeats travel in batches of up to this span; anything else (a press, a cancel, a report,
 * presence, a refused publish) is forwarded at once, as the gateway's outbox does.
 */
const BATCH_SPAN_S = 60

/** A device event before the driver numbers it. */
interface Uplink { type: EventType, battery?: number, rssi?: number, fw?: string, pin?: string, report?: { category: string, text: string } }

type Step =
  | { t: number, kind: 'event', device: string, event: Uplink, ref?: string }
  | { t: number, kind: 'presence', device: string, state: 'online' | 'offline', reason: 'connected' | 'heartbeat_missed' }
  | { t: number, kind: 'dead-letter', device?: string, reason: string }
  | { t: number, kind: 'operator', ref: string, action: string, outcome?: string }
  | { t: number, kind: 'close-report', ref: string }
  | { t: number, kind: 'announce', zone: string, lang: string, title: string, body: string }

export interface SimulationResult {
  /** Alert id of each incident, by scenario ref. */
  alerts: Map<string, string>
  /** Ticket id of each report, by scenario ref. */
  tickets: Map<string, string>
  operatorToken: string
}

function timeline (): Step[] {
  const steps: Step[] = []
  DEVICES.forEach((d, i) => {
    steps.push({ t: 0, kind: 'presence', device: d.id, state: 'online', reason: 'connected' })
    for (let t = (i * 7) % 60; t < HOUR_S; t += 60) {
      if (sendsHeartbeat(d.id, t)) steps.push({ t, kind: 'event', device: d.id, event: { type: 'heartbeat', battery: batteryAt(i, t), rssi: -60 - ((i * 5) % 30), fw: '1.4.2' } })
    }
  })
  for (const id of OUTAGE.devices) steps.push({ t: OUTAGE.at + 90, kind: 'presence', device: id, state: 'offline', reason: 'heartbeat_missed' })
  for (const inc of INCIDENTS) {
    const battery = inc.type === 'battery_low' ? { battery: 12 } : {}
    steps.push({ t: inc.at, kind: 'event', device: inc.device, event: { type: inc.type, ...battery }, ref: inc.ref })
    for (const r of inc.repeats ?? []) steps.push({ t: inc.at + r, kind: 'event', device: inc.device, event: { type: inc.type } })
    for (const c of inc.cancels ?? []) steps.push({ t: inc.at + c.after, kind: 'event', device: inc.device, event: { type: 'cancel', pin: c.pin } })
    for (const o of inc.operator) steps.push({ t: inc.at + o.after, kind: 'operator', ref: inc.ref, action: o.action, outcome: o.outcome })
  }
  for (const r of REPORTS) {
    steps.push({ t: r.at, kind: 'event', device: r.device, event: { type: 'report', report: { category: r.category, text: r.text } }, ref: r.ref })
    if ('closeAfter' in r) steps.push({ t: r.at + r.closeAfter, kind: 'close-report', ref: r.ref })
  }
  for (const { at, ...a } of ANNOUNCEMENTS) steps.push({ t: at, kind: 'announce', ...a })
  for (const dl of DEAD_LETTERS) steps.push({ t: dl.at, kind: 'dead-letter', device: dl.device, reason: dl.reason })
  // Stable order: by time; at the same second, what the gateway forwards before what people do.
  const rank = (s: Step) => (s.kind === 'event' || s.kind === 'presence' || s.kind === 'dead-letter' ? 0 : 1)
  return steps.sort((a, b) => a.t - b.t || rank(a) - rank(b))
}

async function call (app: FastifyInstance, method: 'GET' | 'POST', url: string, token: string, body?: unknown) {
  const response = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { payload: body as object }) })
  if (response.statusCode >= 300) throw new Error(`${method} ${url} → ${response.statusCode} ${response.body}`)
  return response.json()
}

export async function simulateHour (app: FastifyInstance, clock: SimClock, start: Date, tokens: { admin: string, gateway: string }): Promise<SimulationResult> {
  const at = (t: number) => new Date(start.getTime() + t * 1000)
  // Time passes: the server's escalator looks at open alerts, as its timer does in production.
  const advance = async (t: number) => {
    await clock.set(at(t))
    await app.services.escalator.check()
  }
  for (const d of DEVICES) {
    await call(app, 'POST', '/v1/devices', tokens.admin, { id: d.id, kind: d.kind, name: `${d.kind} ${d.id}`, zone: d.zone, lat: d.lat, lon: d.lon, ...(d.pin ? { pin: d.pin } : {}) })
  }
  const operatorToken = (await call(app, 'POST', '/v1/tokens', tokens.admin, { role: 'operator', name: 'sim-operator' })).token as string

  const seq = new Map<string, number>()
  const alerts = new Map<string, string>()
  const tickets = new Map<string, string>()
  let batch: IngestBatch = { events: [], presence: [], deadLetters: [] }
  let batchStart = 0
  let refs = new Map<string, string>() // eventId → scenario ref, for the batch being built

  const flush = async (t: number) => {
    if (batch.events.length + batch.presence!.length + batch.deadLetters!.length === 0) return
    await advance(t)
    const { results } = await call(app, 'POST', '/v1/ingest', tokens.gateway, batch) as { results: IngestResult[] }
    for (const r of results) {
      const ref = refs.get(r.eventId)
      if (ref && r.alertId && !alerts.has(ref)) alerts.set(ref, r.alertId)
      if (ref && r.ticketId) tickets.set(ref, r.ticketId)
    }
    batch = { events: [], presence: [], deadLetters: [] }
    refs = new Map()
  }

  // Urgent events of the same second travel together (24 devices connecting at once: one batch).
  let urgentAt: number | undefined
  for (const step of timeline()) {
    if (urgentAt !== undefined && step.t !== urgentAt) {
      await flush(urgentAt)
      urgentAt = undefined
    }
    const forwarded = step.kind === 'event' || step.kind === 'presence' || step.kind === 'dead-letter'
    if (!forwarded || step.t - batchStart >= BATCH_SPAN_S) await flush(step.t)
    const urgent = forwarded && !(step.kind === 'event' && step.event.type === 'heartbeat')
    if (forwarded && batch.events.length + batch.presence!.length + batch.deadLetters!.length === 0) batchStart = step.t
    const ms = at(step.t).getTime()
    switch (step.kind) {
      case 'event': {
        const n = (seq.get(step.device) ?? 0) + 1
        seq.set(step.device, n)
        const event = { seq: n, boot: 'b1', ts: ms, ...step.event } as DeviceEvent
        const eventId = eventIdOf(step.device, n, 'b1')
        if (step.ref) refs.set(eventId, step.ref)
        batch.events.push({ eventId, deviceId: step.device, gatewayId: GATEWAY_ID, receivedAt: ms, skewMs: 0, skewed: false, event } satisfies GatewayEvent)
        break
      }
      case 'presence':
        batch.presence!.push({ deviceId: step.device, gatewayId: GATEWAY_ID, state: step.state, at: ms, reason: step.reason })
        break
      case 'dead-letter':
        batch.deadLetters!.push({ ...(step.device ? { deviceId: step.device } : {}), gatewayId: GATEWAY_ID, topic: `sos/v1/${step.device ?? 'unknown-client'}/event`, reason: step.reason, payload: Buffer.from('{"seq": 7, "type": ').toString('base64'), receivedAt: ms })
        break
      case 'operator': {
        await advance(step.t)
        const id = alerts.get(step.ref)
        if (!id) throw new Error(`no alert for ${step.ref} at t=${step.t}`)
        await call(app, 'POST', `/v1/alerts/${id}/${step.action}`, operatorToken, step.outcome ? { outcome: step.outcome, note: 'simulated' } : {})
        break
      }
      case 'close-report': {
        await advance(step.t)
        await call(app, 'POST', `/v1/reports/${tickets.get(step.ref)}/close`, operatorToken, { note: 'handled by the ward team' })
        break
      }
      case 'announce':
        await advance(step.t)
        await call(app, 'POST', '/v1/announcements', operatorToken, {
          zone: step.zone, title: step.title, body: step.body, lang: step.lang, expiresAt: new Date(ms + 86_400_000).toISOString()
        })
        break
    }
    if (urgent) urgentAt = step.t
  }
  await flush(HOUR_S)
  await advance(HOUR_S)
  return { alerts, tickets, operatorToken }
}
