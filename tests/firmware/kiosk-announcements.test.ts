/**
 * What kiosks show of their zone's announcements, end to end (the real server, gateway and
 * device state machine): a short announcement posted over a day-long one ends at its expiry on
 * the screen, and the day-long one comes back, for a kiosk that stayed connected and for one
 * that reboots after the short one expired; a withdrawn one leaves every kiosk's screen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import mqtt from 'mqtt'
import { topics } from '../../protocol/index.js'
import { eventually, startSystem, type TestSystem } from '../helpers/system.js'
import { Device } from '../../firmware-sim/device/device.js'
import { RecordedOutputs, type ScreenMessage } from '../../firmware-sim/device/outputs.js'

const zone = 'apd-ann'
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** What the screen shows last of the zone's announcements: an id, or undefined (none). */
const onScreen = (screens: ScreenMessage[]) => {
  const last = screens.filter((m) => m.kind === 'announcement' || m.kind === 'announcement_cleared').at(-1)
  return last?.kind === 'announcement' ? last.id : undefined
}

describe('kiosk announcements end to end', () => {
  let system: TestSystem
  let stateDir: string
  let secret: string
  const id = 'kiosk-ann-e2e'
  const running: Device[] = []

  const kiosk = async () => {
    const outputs = new RecordedOutputs()
    const device = new Device({ id, secret, kind: 'kiosk', zone, mqttUrl: system.mqttUrl, stateDir, heartbeatMs: 3_600_000, backoff: { baseMs: 50, maxMs: 300 } }, outputs)
    running.push(device)
    device.start()
    await once(device, 'connected')
    return { device, outputs }
  }

  beforeAll(async () => {
    system = await startSystem()
    stateDir = mkdtempSync(join(tmpdir(), 'sos-kiosk-ann-'))
    secret = await system.provision(id, { kind: 'kiosk', zone })
  }, 120_000)

  afterAll(async () => {
    for (const device of running) await device.stop()
    await system?.stop()
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
  })

  it('a short announcement over a day-long one ends on time, and the day-long one is shown again, also after a reboot; a withdrawn one leaves the screen', async () => {
    const first = await kiosk()
    const dayLong = await system.api('POST', '/v1/announcements', { zone, title: 'Cúp nước cả ngày', body: 'Thứ bảy', lang: 'vi', expiresAt: inMs(86_400_000) })
    expect(dayLong.body.kiosks).toBe(1)
    await eventually(async () => onScreen(first.outputs.screens) === dayLong.body.id ? true : undefined, 5000, 'day-long shown')
    const short = (await system.api('POST', '/v1/announcements', { zone, title: 'Short', body: 'test', lang: 'vi', expiresAt: inMs(2000) })).body
    await eventually(async () => onScreen(first.outputs.screens) === short.id ? true : undefined, 5000, 'short shown')

    // Expired: the connected kiosk takes it off, and the server retains the day-long one again.
    await eventually(async () => first.outputs.screens.some((m) => m.kind === 'announcement_cleared' && m.id === short.id) ? true : undefined, 10_000, 'short taken off')
    await eventually(async () => onScreen(first.outputs.screens) === dayLong.body.id ? true : undefined, 10_000, 'day-long shown again')

    // A kiosk rebooting now gets the day-long one, not the expired short one.
    await first.device.stop()
    const rebooted = await kiosk()
    await eventually(async () => onScreen(rebooted.outputs.screens) === dayLong.body.id ? true : undefined, 5000, 'day-long shown after the reboot')
    expect(rebooted.outputs.screens.some((m) => m.kind === 'announcement' && m.id === short.id)).toBe(false)

    expect((await system.api('DELETE', `/v1/announcements/${dayLong.body.id}`)).status).toBe(200)
    await eventually(async () => rebooted.outputs.screens.at(-1)?.kind === 'announcement_cleared' ? true : undefined, 5000, 'withdrawn one taken off')
    await rebooted.device.stop()
    const last = await kiosk()
    await sleep(1000)
    expect(last.outputs.screens.filter((m) => m.kind === 'announcement')).toEqual([])

    // Cleared the MQTT way: nothing is retained on the topic any more (a retained "" would
    // still be handed to every subscriber, and a third-party kiosk might show it).
    const probe = await mqtt.connectAsync(system.mqttUrl, { clientId: `${id}:probe`, username: id, password: secret, clean: true, reconnectPeriod: 0 })
    const retained: Buffer[] = []
    probe.on('message', (_topic, payload, packet) => { if (packet.retain) retained.push(payload) })
    await probe.subscribeAsync(topics.announce(zone), { qos: 1 })
    await sleep(1000)
    await probe.endAsync()
    expect(retained.map(String)).toEqual([])
  })
})
