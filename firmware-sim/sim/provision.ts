/**
 * Registers the planned fleet through the admin API (`POST /v1/devices`) and keeps the
 * secrets it is shown once in `{stateDir}/fleet.json` (owner-only), so later runs without
 * `--provision` reuse them.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import writeFileAtomic from 'write-file-atomic'
import type { PlannedDevice } from './fleet-plan.js'

export interface FleetMember extends PlannedDevice {
  secret: string
}

export class ProvisionError extends Error {}

const CONCURRENCY = 8

export async function provisionFleet (serverUrl: string, token: string, plan: PlannedDevice[], known: Map<string, string>): Promise<FleetMember[]> {
  const members: FleetMember[] = new Array(plan.length)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < plan.length; i = next++) {
      const device = plan[i]!
      members[i] = { ...device, secret: await provisionOne(serverUrl, token, device, known.get(device.id)) }
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, plan.length) }, worker))
  return members
}

async function provisionOne (serverUrl: string, token: string, device: PlannedDevice, knownSecret?: string): Promise<string> {
  const { id, kind, name, zone, lat, lon, silent, pin } = device
  const created = await call(serverUrl, token, 'POST', '/v1/devices', { id, kind, name, zone, lat, lon, silent, ...(pin ? { pin } : {}) })
  if (created.status === 201) return created.body.secret as string
  if (created.status === 409) {
    if (knownSecret) return knownSecret
    // Registered by someone else's run: take a new secret (the gateway learns it at its next credential sync).
    const rotated = await call(serverUrl, token, 'POST', `/v1/devices/${id}/secret`)
    if (rotated.status === 200) return rotated.body.secret as string
    throw new ProvisionError(`cannot rotate the secret of existing device ${id}: ${rotated.status} ${rotated.body?.message ?? ''}`)
  }
  throw new ProvisionError(`provisioning ${id} refused: ${created.status} ${created.body?.message ?? JSON.stringify(created.body)}`)
}

async function call (serverUrl: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> {
  let response: Response
  try {
    response = await fetch(serverUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
  } catch (err) {
    throw new ProvisionError(`server ${serverUrl} unreachable: ${(err as Error).cause ?? (err as Error).message}`)
  }
  const text = await response.text()
  let parsed: unknown
  try { parsed = text ? JSON.parse(text) : undefined } catch { parsed = { message: text.slice(0, 200) } }
  return { status: response.status, body: parsed }
}

const fleetFile = (stateDir: string) => join(stateDir, 'fleet.json')

export function loadFleet (stateDir: string): FleetMember[] {
  try {
    const members = JSON.parse(readFileSync(fleetFile(stateDir), 'utf8')) as FleetMember[]
    return Array.isArray(members) ? members.filter((m) => typeof m?.id === 'string' && typeof m.secret === 'string') : []
  } catch {
    return []
  }
}

export function saveFleet (stateDir: string, members: FleetMember[]): void {
  const byId = new Map(loadFleet(stateDir).map((m) => [m.id, m]))
  for (const m of members) byId.set(m.id, m)
  mkdirSync(stateDir, { recursive: true })
  writeFileAtomic.sync(fleetFile(stateDir), JSON.stringify([...byId.values()], null, 2) + '\n', { mode: 0o600 })
}
