/**
 * A server app on a given database, called with `inject`, plus helpers that act as a gateway
 * (ingest batches), an admin (provisioning) and an operator.
 */
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../server/app.js'
import type { Database } from '../../server/db/database.js'
import { migrate } from '../../server/db/migrate.js'
import { eventIdOf, type REPORT_CATEGORIES, type DeviceEvent, type EventType, type GatewayEvent, type IngestBatch, type IngestResult } from '../../protocol/index.js'

export const TOKENS = { admin: 'admin-token-for-tests', gateway: 'gateway-token-for-tests' }

export interface Fixture {
  app: FastifyInstance
  db: Database
  call<T = any>(method: string, url: string, body?: unknown, token?: string): Promise<{ status: number, body: T }>
  provision(id: string, extra?: Record<string, unknown>): Promise<{ secret: string, body: any }>
  ingest(batch: Partial<IngestBatch> & { events?: GatewayEvent[] }): Promise<IngestResult[]>
  tokenFor(role: 'operator' | 'analyst' | 'gateway'): Promise<string>
}

export async function buildFixture (db: Database, options: Partial<AppOptions> = {}): Promise<Fixture> {
  await migrate(db)
  const app = await buildApp({
    db,
    staticTokens: [{ token: TOKENS.admin, role: 'admin', name: 'admin' }, { token: TOKENS.gateway, role: 'gateway', name: 'gw-test' }],
    ...options
  })
  await app.ready()
  const call: Fixture['call'] = async (method, url, body, token = TOKENS.admin) => {
    const response = await app.inject({
      method: method as 'GET',
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body === undefined ? {} : { payload: body as object })
    })
    return { status: response.statusCode, body: (response.body ? response.json() : undefined) as any }
  }
  return {
    app,
    db,
    call,
    async provision (id, extra = {}) {
      const { status, body } = await call('POST', '/v1/devices', { id, kind: 'button', name: `Device ${id}`, zone: 'zone-a', lat: 10.78, lon: 106.7, ...extra })
      if (status !== 201) throw new Error(`provisioning ${id}: ${status} ${JSON.stringify(body)}`)
      return { secret: body.secret, body }
    },
    async ingest (batch) {
      const { status, body } = await call('POST', '/v1/ingest', { events: [], ...batch }, TOKENS.gateway)
      if (status !== 200) throw new Error(`ingest: ${status} ${JSON.stringify(body)}`)
      return body.results
    },
    async tokenFor (role) {
      const { body } = await call('POST', '/v1/tokens', { role, name: `${role}-1` })
      return body.token
    }
  }
}

/** A gateway event as the forwarder sends it. */
export function gatewayEvent (deviceId: string, event: Omit<DeviceEvent, 'type' | 'report'> & { type: EventType, report?: { category: typeof REPORT_CATEGORIES[number], text: string } }, receivedAt: number, gatewayId = 'gw-test'): GatewayEvent {
  return { eventId: eventIdOf(deviceId, event.seq, event.boot), deviceId, gatewayId, receivedAt, skewed: false, event: event as DeviceEvent }
}
