/**
 * The foundation slice, end to end over real sockets: a provisioned device presses at QoS 1,
 * the gateway stores and forwards, the server opens a panic alert, the device hears
 * `received`, an operator acknowledges, the device hears `acknowledged`.
 * Runs on every storage back-end available (embedded PGlite; PostgreSQL when TEST_DATABASE_URL).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { storageBackends } from '../helpers/postgres.js'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'

describe.each(storageBackends)('press to alert on $name', (backend) => {
  let system: TestSystem
  let dropDatabase: () => Promise<void>
  let device: MqttClient
  let secret: string
  const id = 'btn-e2e-001'

  beforeAll(async () => {
    const db = await backend.databaseUrl()
    dropDatabase = db.drop
    system = await startSystem({ databaseUrl: db.url })
    secret = await system.provision(id)
    device = await connectDevice(system.mqttUrl, id, id, secret)
  })

  afterAll(async () => {
    await device?.endAsync()
    await system?.stop()
    await dropDatabase?.()
  })

  it('opens a panic alert, answers received, then acknowledged after the operator acts', async () => {
    const acks = await ackCollector(device, id)
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })

    const alert = await eventually(async () => {
      const { body } = await system.api('GET', '/v1/alerts?state=open')
      return (body as any[]).find((a) => a.deviceId === id)
    }, 5000, 'open alert')
    expect(alert).toMatchObject({ kind: 'panic', state: 'open', zone: 'apd-1', pressCount: 1 })

    const received = await acks.waitFor((a) => a.state === 'received' && a.seq === 1)
    expect(received.alertId).toBe(alert.id)

    const { status, body } = await system.api('POST', `/v1/alerts/${alert.id}/acknowledge`, { note: 'patrol informed' })
    expect(status).toBe(200)
    expect(body.state).toBe('acknowledged')
    expect(body.transitions.map((t: any) => t.to)).toEqual(['open', 'acknowledged'])

    const acknowledged = await acks.waitFor((a) => a.state === 'acknowledged')
    expect(acknowledged).toMatchObject({ seq: 1, alertId: alert.id })
  })

  it('stores every accepted event, heartbeats included, once', async () => {
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 2, type: 'heartbeat', battery: 87, rssi: -61 }), { qos: 1 })
    // The same event again, as a device resends after a lost PUBACK.
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 2, type: 'heartbeat', battery: 87, rssi: -61 }), { qos: 1 })
    const events = await eventually(async () => {
      const { body } = await system.api('GET', `/v1/events?deviceId=${id}`)
      return (body as any[]).some((e) => e.type === 'heartbeat') ? body as any[] : undefined
    }, 5000, 'heartbeat stored')
    expect(events.filter((e) => e.seq === 2)).toHaveLength(1)
    expect(events.map((e) => e.type).sort()).toEqual(['heartbeat', 'press'])
    const { body: deviceView } = await system.api('GET', `/v1/devices/${id}`)
    expect(deviceView).toMatchObject({ battery: 87, rssi: -61 })
    expect(deviceView.lastSeenAt).not.toBeNull()
  })

  it('joins further presses to the open alert instead of opening new ones', async () => {
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 3, type: 'press' }), { qos: 1 })
    await device.publishAsync(topics.event(id), JSON.stringify({ seq: 4, type: 'hold' }), { qos: 1 })
    const alert = await eventually(async () => {
      const { body } = await system.api('GET', `/v1/alerts?deviceId=${id}`)
      const list = body as any[]
      return list.length === 1 && list[0].pressCount === 3 ? list[0] : undefined
    }, 5000, 'coalesced press count 3')
    expect(alert.state).toBe('acknowledged')
  })

  it('pushes alert changes on the live stream, resumable with Last-Event-ID', async () => {
    const response = await fetch(`${system.server.url}/v1/stream`, { headers: { authorization: `Bearer ${system.adminToken}` } })
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/)
    const reader = response.body!.getReader()
    const seen: string[] = []
    const reading = (async () => {
      const decoder = new TextDecoder()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        seen.push(decoder.decode(value))
        if (seen.join('').includes('"state":"open"')) return
      }
    })()
    await system.provision('btn-e2e-002')
    const secret2 = (await system.api('POST', '/v1/devices/btn-e2e-002/secret')).body.secret
    const other = await connectDevice(system.mqttUrl, 'btn-e2e-002', 'btn-e2e-002', secret2)
    await other.publishAsync(topics.event('btn-e2e-002'), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    await reading
    await reader.cancel()
    await other.endAsync()
    const text = seen.join('')
    expect(text).toMatch(/event: alert\ndata: \{[^\n]*"deviceId":"btn-e2e-002"/)
    const [, run, n] = /id: (\w+)\.(\d+)\nevent: alert\ndata: [^\n]*btn-e2e-002/.exec(text)!
    const lastId = Number(n)

    // Reconnecting from before that entry replays it.
    const resume = (lastEventId: string) => fetch(`${system.server.url}/v1/stream`, { headers: { authorization: `Bearer ${system.adminToken}`, 'last-event-id': lastEventId } })
    const r2 = (await resume(`${run}.${lastId - 1}`)).body!.getReader()
    let replay = ''
    while (!replay.includes('btn-e2e-002')) replay += new TextDecoder().decode((await r2.read()).value)
    await r2.cancel()
    expect(replay).toContain(`id: ${run}.${lastId}`)

    // An id from another run of the server (it restarted) or another instance names nothing
    // here: the client is told to reload, never handed this run's entries as if they followed.
    for (const foreign of [`x${run}.${lastId - 1}`, String(lastId - 1)]) {
      const r3 = (await resume(foreign)).body!.getReader()
      let answer = ''
      while (!answer.includes('event: ')) answer += new TextDecoder().decode((await r3.read()).value)
      await r3.cancel()
      expect(answer, foreign).toMatch(/^retry: 2000\n\nevent: reset\n/)
    }
  })

  it('pushes a kiosk report onto the live stream when it is filed and when an operator closes it', async () => {
    const response = await fetch(`${system.server.url}/v1/stream`, { headers: { authorization: `Bearer ${system.adminToken}` } })
    const reader = response.body!.getReader()
    let text = ''
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) text += new TextDecoder().decode((await reader.read()).value)
      return pattern.exec(text)!
    }
    const kiosk = 'ksk-e2e-stream'
    const secret = await system.provision(kiosk, { kind: 'kiosk' })
    const client = await connectDevice(system.mqttUrl, kiosk, kiosk, secret)
    await client.publishAsync(topics.event(kiosk), JSON.stringify({ seq: 1, type: 'report', report: { category: 'other', text: 'street light out' } }), { qos: 1 })
    const [, reportId] = await until(/event: report\ndata: \{"reportId":"([^"]+)","deviceId":"ksk-e2e-stream","state":"open"\}/)
    expect((await system.api('POST', `/v1/reports/${reportId}/close`, { note: 'sent to the utility' })).status).toBe(200)
    await until(new RegExp(`event: report\\ndata: \\{"reportId":"${reportId}","deviceId":"${kiosk}","state":"closed"\\}`))
    await reader.cancel()
    await client.endAsync()
  })

  it('refuses a wrong password at CONNACK', async () => {
    await expect(connectDevice(system.mqttUrl, id, id, 'not-the-secret')).rejects.toThrow(/Bad username or password|Not authorized/i)
  })

  it('limits list endpoints to 1000 rows and answers errors as JSON', async () => {
    const { status, body } = await system.api('GET', '/v1/events?limit=1001')
    expect(status).toBe(400)
    expect(Object.keys(body).sort()).toEqual(['code', 'message', 'statusCode'])
  })
})
