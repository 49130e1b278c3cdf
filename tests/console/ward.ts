/**
 * A ward for the console tests: the real server (server.ts) and what happens in the ward, driven
 * through its API as an admin and as a gateway (presses, warnings, a gateway's last wills).
 */
import { startConsoleServer } from './server.js'

export const ADMIN = 'admin_console_ward_test'
export const GATEWAY = 'gw_console_ward_test'

export type Ward = Awaited<ReturnType<typeof startWard>>

export async function startWard (name: string, env: NodeJS.ProcessEnv = {}) {
  // No escalation or gateway loss within a test unless it asks: they would add cues of their own.
  const server = await startConsoleServer(name, { admin: ADMIN, gateway: GATEWAY }, { ESCALATE_AFTER: '1h', GATEWAY_LOST_AFTER: '1h', ...env })
  let seq = 0
  const call = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'x-gateway-id': 'gw-ward', ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : null }
  }
  const ok = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const answer = await call(method, path, body, token)
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`)
    return answer.body
  }
  const gatewayEvent = (deviceId: string, event: Record<string, unknown>) => {
    const e = { seq: ++seq, ...event }
    return { eventId: `${deviceId}/-/${e.seq}`, deviceId, gatewayId: 'gw-ward', receivedAt: Date.now(), skewed: false, event: e }
  }
  return {
    url: server.url,
    close: () => server.close(),
    dropConnections: () => server.dropConnections(),
    call,
    ok,
    provision: (id: string, name: string) =>
      ok('POST', '/v1/devices', { id, kind: 'button', name, zone: 'apd-1', lat: 10.86 + Math.random() / 100, lon: 106.7 + Math.random() / 100 }),
    /** Events from one device, as its gateway forwards them (one batch). */
    send: (deviceId: string, ...events: Record<string, unknown>[]) =>
      ok('POST', '/v1/ingest', { events: events.map((e) => gatewayEvent(deviceId, e)) }, GATEWAY),
    press: (deviceId: string) => ok('POST', '/v1/ingest', { events: [gatewayEvent(deviceId, { type: 'press' })] }, GATEWAY),
    /** A gateway's last wills: every one of these devices offline at once. */
    offline: (deviceIds: string[]) => ok('POST', '/v1/ingest', {
      events: [], presence: deviceIds.map((deviceId) => ({ deviceId, gatewayId: 'gw-ward', state: 'offline', at: Date.now(), reason: 'will' }))
    }, GATEWAY),
    /** Resolves every active alert (a test leaves the ward quiet for the next). */
    async resolveAll () {
      for (const state of ['open', 'acknowledged', 'dispatched']) {
        for (const alert of await ok('GET', `/v1/alerts?state=${state}&limit=1000`) as any[]) {
          await ok('POST', `/v1/alerts/${alert.id}/resolve`, { outcome: 'test' })
        }
      }
    },
    /** The device's alert still active (the newest), if any. */
    activeAlert: async (deviceId: string) => ((await ok('GET', `/v1/alerts?deviceId=${deviceId}&limit=1`)) as any[])[0]
  }
}
