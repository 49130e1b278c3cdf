/**
 * Device trust over real sockets: who may connect (client id = device id, username, secret),
 * what a refused client leaves behind (nothing), the ACL of DESIGN.md §3 for publishes and
 * subscriptions, no retained state from devices, and revocation closing live sessions.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import { ackCollector, connectDevice, eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue, retainedMessages, subscribeCodes } from './helpers.js'

// Real servers with embedded PostgreSQL start slowly on a busy machine: give hooks room.
vi.setConfig({ hookTimeout: 240_000 })

describe('device trust', () => {
  let system: TestSystem
  const a = 'btn-trust-a'
  const b = 'btn-trust-b'
  let secretA: string
  let secretB: string
  const open: MqttClient[] = []
  const connect = async (...args: Parameters<typeof connectDevice>) => {
    const client = await connectDevice(...args)
    open.push(client)
    return client
  }

  beforeAll(async () => {
    // A short refresh so revocation is seen within the test; production uses 30 s.
    system = await startSystem({ gateway: { credentialRefreshMs: 300, reconnectGraceMs: 100 } })
    secretA = await system.provision(a)
    secretB = await system.provision(b, { zone: 'apd-2' })
  })

  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true)))
    await system?.stop()
  })

  it.each([
    ['a wrong password', () => [a, a, 'not-the-secret'], /Bad username or password/],
    ['an anonymous client', () => [a, undefined, undefined], /Bad username or password/],
    ['a username without password', () => [a, a, undefined], /Bad username or password/],
    ['another device\'s client id', () => [b, a, secretA], /Identifier rejected/],
    ['another device\'s client id with a suffix', () => [`${b}:svc`, a, secretA], /Identifier rejected/],
    ['a foreign client id', () => ['mqttjs_12345678', a, secretA], /Identifier rejected/],
    ['an empty client id', () => ['', a, secretA], /Identifier rejected/],
    ['the right password for another device', () => [a, a, secretB], /Bad username or password/],
    ['an unknown device', () => ['btn-nobody-01', 'btn-nobody-01', 'x'], /Bad username or password/]
  ] as Array<[string, () => [string, string | undefined, string | undefined], RegExp]>)('refuses %s at CONNACK', async (_what, args, error) => {
    const [clientId, username, password] = args()
    await expect(connectDevice(system.mqttUrl, clientId, username, password)).rejects.toThrow(error)
  })

  it('accepts device credentials over the WebSocket listener too, and refuses a wrong password there', async () => {
    const url = `ws://127.0.0.1:${system.gateway.ports.ws}`
    const device = await connect(url, a, a, secretA)
    const acks = await ackCollector(device, a)
    await device.publishAsync(topics.event(a), JSON.stringify({ seq: 900, type: 'press' }), { qos: 1 })
    await acks.waitFor((x) => x.state === 'received' && x.seq === 900, 15_000)
    await device.endAsync()
    await expect(connectDevice(url, a, a, 'wrong')).rejects.toThrow(/Bad username or password/)
  })

  it('gives a second connection of a device only a clean session: no pile of persistent sessions under made-up suffixes', async () => {
    await expect(connectDevice(system.mqttUrl, `${a}:svc-1`, a, secretA, { clean: false })).rejects.toThrow(/Identifier rejected/)
    const service = await connect(system.mqttUrl, `${a}:svc-1`, a, secretA)
    await service.subscribeAsync(topics.ack(a), { qos: 1 })
    await service.endAsync()
    const persistence = (system.gateway.broker as any).persistence
    expect((await persistence.subscriptionsByTopic(topics.ack(a))).filter((s: { clientId: string }) => s.clientId.startsWith(`${a}:`))).toEqual([])
    // The device itself keeps its persistent session, as the firmware needs.
    const device = await connect(system.mqttUrl, a, a, secretA, { clean: false })
    expect(device.connected).toBe(true)
  })

  it('leaves nothing behind for a client that failed authentication', async () => {
    // A device that never connected, so any state found would be the refused client's.
    const c = 'btn-trust-never'
    await system.provision(c)
    const before = system.gateway.broker.connectedClients
    await expect(connectDevice(system.mqttUrl, c, c, 'wrong', {
      clean: false,
      will: { topic: topics.status(c), payload: Buffer.from('offline'), qos: 1, retain: true }
    })).rejects.toThrow(/Bad username or password/)
    const persistence = (system.gateway.broker as any).persistence
    expect(await persistence.subscriptionsByClient({ id: c })).toEqual([])
    expect(await persistence.getWill({ id: c })).toBeUndefined()
    expect(await retainedMessages(system.gateway.broker, `sos/v1/${c}/#`)).toEqual([])
    expect((system.gateway.broker as any).clients[c]).toBeUndefined()
    expect(system.gateway.broker.connectedClients).toBe(before)
    expect(system.gateway.supervisor.stateOf(c)).toBeUndefined()
    expect(await metricValue(system.gateway, 'sos_gateway_connections_refused_total', { reason: 'bad_secret' })).toBeGreaterThan(0)
  })

  it('grants a device only its own ack and cmd topics and its zone\'s announcements', async () => {
    const device = await connect(system.mqttUrl, a, a, secretA)
    const asked = [
      topics.ack(a), topics.cmd(a), topics.announce('apd-1'),
      topics.ack(b), topics.announce('apd-2'), topics.status(a), topics.event(a), '#', 'sos/v1/+/ack', '$SYS/#'
    ]
    const codes = await subscribeCodes(device, asked)
    expect(asked.map((t, i) => [t, codes[i]])).toEqual([
      [topics.ack(a), 1], [topics.cmd(a), 1], [topics.announce('apd-1'), 1],
      [topics.ack(b), 128], [topics.announce('apd-2'), 128], [topics.status(a), 128], [topics.event(a), 128],
      ['#', 128], ['sos/v1/+/ack', 128], ['$SYS/#', 128]
    ])
    await device.endAsync()
  })

  it('gives a publish to another device\'s topics no effect and stores nothing', async () => {
    const attacker = await connect(system.mqttUrl, a, a, secretA)
    const attackerAcks = await ackCollector(attacker, a)
    const victimListener = await connect(system.mqttUrl, `${b}:listen`, b, secretB)
    const victimAcks = await ackCollector(victimListener, b)

    await attacker.publishAsync(topics.event(b), JSON.stringify({ seq: 1, type: 'press' }), { qos: 1 })
    await attacker.publishAsync(topics.ack(b), JSON.stringify({ seq: 1, state: 'resolved' }), { qos: 1 })
    await attacker.publishAsync(topics.cmd(b), JSON.stringify({ reboot: true }), { qos: 1 })
    await attacker.publishAsync('sos/v1/announce/apd-2', JSON.stringify({ title: 'fake' }), { qos: 1, retain: true })
    const denials = await eventually(async () => {
      const rejected = attackerAcks.acks.filter((x) => x.state === 'rejected')
      return rejected.length === 4 ? rejected : undefined
    }, 15_000, 'four denials')
    expect(denials.every((d) => d.reason === 'topic not allowed')).toBe(true)

    // The victim's own press goes through; nothing the attacker sent reached its listener first.
    const victim = await connect(system.mqttUrl, b, b, secretB)
    await victim.publishAsync(topics.event(b), JSON.stringify({ seq: 50, type: 'press' }), { qos: 1 })
    await victimAcks.waitFor((x) => x.state === 'received' && x.seq === 50, 15_000)
    expect(victimAcks.acks.filter((x) => x.state !== 'received')).toEqual([])

    const { body: events } = await system.api('GET', `/v1/events?deviceId=${b}`)
    expect(events.map((e: any) => e.seq)).toEqual([50])
    expect(await retainedMessages(system.gateway.broker, 'sos/v1/announce/#')).toEqual([])
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total', { reason: 'topic_not_allowed' })).toBe(4)
    await attacker.endAsync()
    await victim.endAsync()
    await victimListener.endAsync()
  })

  it('keeps no retained message from a device; the retained status is the gateway\'s', async () => {
    const device = await connect(system.mqttUrl, a, a, secretA)
    const acks = await ackCollector(device, a)
    await device.publishAsync(topics.status(a), 'hacked', { qos: 1, retain: true })
    await device.publishAsync(topics.event(a), JSON.stringify({ seq: 7, type: 'press' }), { qos: 1, retain: true })
    await acks.waitFor((x) => x.state === 'received' && x.seq === 7, 15_000)
    const retained = await retainedMessages(system.gateway.broker, `sos/v1/${a}/#`)
    expect(retained).toEqual([{ topic: topics.status(a), payload: 'online' }])
    await device.endAsync()
  })

  it('refuses a revoked device and closes its live sessions within the refresh interval', async () => {
    const id = 'btn-trust-rev'
    const secret = await system.provision(id)
    const device = await connect(system.mqttUrl, id, id, secret)
    const service = await connect(system.mqttUrl, `${id}:svc`, id, secret)
    const closed = Promise.all([device, service].map((c) => new Promise<void>((resolve) => c.once('close', () => resolve()))))
    const { status } = await system.api('DELETE', `/v1/devices/${id}`)
    expect(status).toBeLessThan(300)
    await closed
    await expect(connectDevice(system.mqttUrl, id, id, secret)).rejects.toThrow(/Not authorized/)
    expect(system.gateway.supervisor.stateOf(id)).toBe('offline')
    expect(await metricValue(system.gateway, 'sos_gateway_presence_changes_total', { state: 'offline', reason: 'revoked' })).toBe(1)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'revoked' })).toBe(2)
  })

  it('closes a device revoked while it was connecting (during its secret check)', async () => {
    // Each attempt revokes a device whose CONNECT is being checked (its credentials looked up
    // from the server, its secret checked), at a different moment of it; the refresh that
    // revokes it runs at once.
    for (let i = 0; i < 6; i++) {
      const id = `btn-trust-race-${i}`
      const secret = await system.provision(id)
      const connecting = connectDevice(system.mqttUrl, id, id, secret, { reconnectPeriod: 0 }).catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, i * 8))
      expect((await system.api('DELETE', `/v1/devices/${id}`)).status).toBeLessThan(300)
      await system.gateway.credentials.refresh()
      const device = await connecting
      if (device) open.push(device)
      // Refused at CONNECT, or closed once ready: never left publishing.
      await eventually(async () => !device || !device.connected || undefined, 5000, `${id} closed after its revocation`)
      expect(system.gateway.supervisor.stateOf(id)).not.toBe('online')
    }
  })

  it('keeps only the granted topics of a persistent session: nothing of another device is queued for it while it is away', async () => {
    // aedes stores a persistent session's SUBSCRIBE as sent once one topic is granted, and
    // queues what matches while the client is away: one device's secret read every device's
    // events, cancel PINs included, and every zone's announcements.
    const attackerId = 'btn-trust-persist'
    const attackerSecret = await system.provision(attackerId)
    const victimId = 'btn-trust-victim'
    const victimSecret = await system.provision(victimId, { zone: 'apd-2' })
    let attacker = await connect(system.mqttUrl, attackerId, attackerId, attackerSecret, { clean: false })
    const asked = [topics.ack(attackerId), '#', 'sos/v1/+/event', topics.ack(victimId), topics.announce('apd-2')]
    expect(await subscribeCodes(attacker, asked)).toEqual([1, 128, 128, 128, 128])
    const persistence = (system.gateway.broker as unknown as { persistence: { subscriptionsByClient (c: { id: string }): Promise<Array<{ topic: string }>> } }).persistence
    expect((await persistence.subscriptionsByClient({ id: attackerId })).map((s) => s.topic)).toEqual([topics.ack(attackerId)])
    await attacker.endAsync()

    // While it is away: a press of another device, and an announcement to another zone.
    const victim = await connect(system.mqttUrl, victimId, victimId, victimSecret)
    const victimAcks = await ackCollector(victim, victimId)
    const announced = new Promise<void>((resolve) => victim.on('message', (topic) => { if (topic === topics.announce('apd-2')) resolve() }))
    await victim.subscribeAsync(topics.announce('apd-2'), { qos: 1 })
    await victim.publishAsync(topics.event(victimId), JSON.stringify({ seq: 300, type: 'press' }), { qos: 1 })
    await victimAcks.waitFor((x) => x.state === 'received' && x.seq === 300, 15_000)
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    expect((await system.api('POST', '/v1/announcements', { zone: 'apd-2', title: 'zone 2', body: 'for zone 2 only', lang: 'en', expiresAt })).status).toBe(201)
    await announced
    await victim.endAsync()

    // Back: it hears its own answers, and nothing else.
    const heard: string[] = []
    attacker = await connect(system.mqttUrl, attackerId, attackerId, attackerSecret, { clean: false })
    attacker.on('message', (topic) => heard.push(topic))
    const acks = await ackCollector(attacker, attackerId)
    await attacker.publishAsync(topics.event(attackerId), JSON.stringify({ seq: 1, type: 'test' }), { qos: 1 })
    await acks.waitFor((x) => x.state === 'received' && x.seq === 1, 15_000)
    expect(heard.filter((topic) => topic !== topics.ack(attackerId))).toEqual([])
    await attacker.endAsync()
  })

  it('takes no alarm from a last will: not from a dropped link, not from a revoked device', async () => {
    // A will is published by whoever ends the connection: the network, a revocation, the
    // device taking its client id back from an intruder. A will on the event topic would open
    // a panic alert nobody pressed for.
    const rejected = () => metricValue(system.gateway, 'sos_gateway_events_rejected_total', { reason: 'last_will_on_the_event_topic' })
    const ids = ['btn-trust-will-drop', 'btn-trust-will-rev']
    for (const [i, id] of ids.entries()) {
      const secret = await system.provision(id)
      const will = { topic: topics.event(id), payload: Buffer.from(JSON.stringify({ seq: 999, type: 'press' })), qos: 1 as const, retain: false }
      const device = await connect(system.mqttUrl, id, id, secret, { will })
      const closed = new Promise<void>((resolve) => device.once('close', () => resolve()))
      // The link dies without DISCONNECT; or the device is revoked and the gateway closes it.
      if (i === 0) device.stream.destroy()
      else expect((await system.api('DELETE', `/v1/devices/${id}`)).status).toBeLessThan(300)
      await closed
      await eventually(async () => (await rejected()) === i + 1 || undefined, 10_000, `the will of ${id} refused`)
    }
    for (const id of ids) expect((await system.api('GET', `/v1/events?deviceId=${id}`)).body).toEqual([])
    const { body: alerts } = await system.api('GET', '/v1/alerts?kind=panic')
    expect(alerts.filter((a: { deviceId: string }) => ids.includes(a.deviceId))).toEqual([])
  })

  it('closes the connections made with a secret once it is rotated, and keeps those made with the new one', async () => {
    // Rotation is the answer to a leaked secret: a thief signed in with the old one must not
    // stay connected, pressing, for as long as its keepalive holds.
    const id = 'btn-trust-rot'
    const old = await system.provision(id)
    const thief = await connect(system.mqttUrl, `${id}:x`, id, old)
    const thiefClosed = new Promise<void>((resolve) => thief.once('close', () => resolve()))
    const { status, body } = await system.api<{ secret: string }>('POST', `/v1/devices/${id}/secret`)
    expect(status).toBe(200)
    // The device with its new secret, before and after the refresh that tells the gateway.
    const device = await connect(system.mqttUrl, id, id, body.secret)
    await thiefClosed
    await expect(connectDevice(system.mqttUrl, `${id}:y`, id, old)).rejects.toThrow(/Bad username or password/)
    await new Promise((resolve) => setTimeout(resolve, 1000)) // a few more refreshes
    expect(device.connected).toBe(true)
    expect(await metricValue(system.gateway, 'sos_gateway_connections_closed_total', { reason: 'secret_rotated' })).toBe(1)
  })
})
