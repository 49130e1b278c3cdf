/** Provisions simulated devices through the admin API, as an installer would. */

export interface DeviceCredentials {
  id: string
  secret: string
}

export async function provisionFleet (serverUrl: string, adminToken: string, count: number, prefix: string, concurrency = 4): Promise<DeviceCredentials[]> {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`)
  const devices: DeviceCredentials[] = []
  let next = 0
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!
      const response = await fetch(`${serverUrl}/v1/devices`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id, kind: 'button', name: `Bench ${id}`, zone: 'bench-1', lat: 10.86, lon: 106.7 })
      })
      const body = await response.json() as { secret?: string }
      if (response.status !== 201 || !body.secret) throw new Error(`provisioning ${id}: ${response.status} ${JSON.stringify(body)}`)
      devices.push({ id, secret: body.secret })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return devices.sort((a, b) => a.id.localeCompare(b.id))
}
