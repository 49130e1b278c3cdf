/**
 * A device that moves between gateways: the late `offline` of the gateway it left (its dead
 * connection timing out, or that gateway restarted and missing its heartbeats) must not open a
 * `device_offline` alert for a device online through another gateway all along.
 * Runs on embedded PGlite, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'
import type { PresenceChange } from '../../protocol/index.js'

const plainBackends = databaseBackends.filter((b) => !b.timescale)

describe.each(plainBackends)('presence of a device that changes gateway, on $name', (backend) => {
  let fx: Fixture
  let dispose: () => Promise<void>
  const t0 = Date.now() - 3600_000

  beforeAll(async () => {
    const opened = await backend.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  const report = (deviceId: string, gatewayId: string, state: PresenceChange['state'], at: number, reason: PresenceChange['reason']) =>
    fx.ingest({ presence: [{ deviceId, gatewayId, state, at, reason }] })
  const offlineAlerts = async (deviceId: string) => ((await fx.call('GET', `/v1/alerts?deviceId=${deviceId}&kind=device_offline`)).body as any[])
  const device = async (id: string) => (await fx.call('GET', `/v1/devices/${id}`)).body

  it('ignores the offline of the gateway a device left, and still hears the one it moved to', async () => {
    await fx.provision('roam-1')
    await report('roam-1', 'gw-a', 'online', t0, 'connected')
    // Power blip: the button reconnects through the load balancer to gateway B.
    await report('roam-1', 'gw-b', 'online', t0 + 10_000, 'connected')
    // A sees the old connection die a keepalive and a grace later.
    await report('roam-1', 'gw-a', 'offline', t0 + 95_000, 'will')
    expect(await offlineAlerts('roam-1')).toEqual([])
    expect(await device('roam-1')).toMatchObject({ online: true })

    // The gateway it is on now reports it gone: that counts.
    await report('roam-1', 'gw-b', 'offline', t0 + 200_000, 'heartbeat_missed')
    const [alert] = await offlineAlerts('roam-1')
    expect(alert).toMatchObject({ state: 'open' })
    // Back through A: A's word again.
    await report('roam-1', 'gw-a', 'online', t0 + 300_000, 'connected')
    expect((await offlineAlerts('roam-1'))[0]).toMatchObject({ id: alert.id, state: 'resolved' })
    await report('roam-1', 'gw-a', 'offline', t0 + 400_000, 'disconnected')
    expect((await offlineAlerts('roam-1')).filter((a) => a.state === 'open')).toHaveLength(1)
  })

  it('hears the offline of a gateway the device is heard through, though another reported it online last (a gateway restarted or renamed)', async () => {
    await fx.provision('roam-3')
    await report('roam-3', 'gw-a', 'online', t0, 'connected')
    await report('roam-3', 'gw-b', 'online', t0 + 10_000, 'connected')
    // Back on A, which had it online when it restarted and so reports nothing: its events say where it is.
    await fx.ingest({ events: [gatewayEvent('roam-3', { seq: 1, type: 'heartbeat' }, t0 + 60_000, 'gw-a')] })
    await report('roam-3', 'gw-a', 'offline', t0 + 120_000, 'heartbeat_missed')
    expect((await offlineAlerts('roam-3')).filter((a) => a.state === 'open')).toHaveLength(1)
  })

  it('ignores a restarted gateway missing the heartbeats of devices that moved away while it was down', async () => {
    await fx.provision('roam-2')
    await report('roam-2', 'gw-a', 'online', t0, 'connected')
    await report('roam-2', 'gw-b', 'online', t0 + 60_000, 'connected')
    await report('roam-2', 'gw-a', 'offline', t0 + 120_000, 'heartbeat_missed')
    expect(await offlineAlerts('roam-2')).toEqual([])
    // A revocation is the server's own word, whichever gateway carries it.
    await report('roam-2', 'gw-a', 'offline', t0 + 130_000, 'revoked')
    expect(await device('roam-2')).toMatchObject({ online: false })
  })
  it('ignores the offline of the gateway a device left though its last event came through it, and the device goes on online through the other', async () => {
    // Heard through A, then moved to B (reported online there at once, its first heartbeat an
    // interval away), then A's will fires: the event through A was taken for the device being
    // there now, the alert opened, and B, which never says online again, never resolved it.
    await fx.provision('roam-4')
    await report('roam-4', 'gw-a', 'online', t0, 'connected')
    await fx.ingest({ events: [gatewayEvent('roam-4', { seq: 1, type: 'heartbeat' }, t0 + 30_000, 'gw-a')] })
    await report('roam-4', 'gw-b', 'online', t0 + 61_000, 'connected')
    await report('roam-4', 'gw-a', 'offline', t0 + 65_000, 'will')
    for (let seq = 2; seq < 5; seq++) await fx.ingest({ events: [gatewayEvent('roam-4', { seq, type: 'heartbeat' }, t0 + 60_000 + seq * 30_000, 'gw-b')] })
    expect(await offlineAlerts('roam-4')).toEqual([])
    expect(await device('roam-4')).toMatchObject({ online: true })
  })
  it('orders the changes of a gateway whose clock was set back between them by the server\'s clock', async () => {
    // The gateway's clock ran an hour fast when it reported the device online, then NTP set it
    // right: its offline, dated by the right clock, was older than the online by its date, and
    // was dropped as stale (no alert for a dead device). Each request says when it was sent.
    await fx.provision('roam-5')
    const hour = 3600_000
    const now = Date.now()
    await fx.ingest({ presence: [{ deviceId: 'roam-5', gatewayId: 'gw-a', state: 'online', at: now - 60_000 + hour, reason: 'connected' }], sentAt: now - 59_000 + hour })
    await fx.ingest({ presence: [{ deviceId: 'roam-5', gatewayId: 'gw-a', state: 'offline', at: Date.now() - 1_000, reason: 'heartbeat_missed' }], sentAt: Date.now() })
    expect(await device('roam-5')).toMatchObject({ online: false })
    expect((await offlineAlerts('roam-5')).filter((a) => a.state === 'open')).toHaveLength(1)
  })
})
