/**
 * Refusals are logged on a budget over real sockets: a device spraying malformed publishes and a
 * flood of wrong passwords each cost a few log lines, while every refused publish is still
 * acknowledged, answered `rejected`, dead-lettered and counted, and every refused CONNECT is
 * counted (DESIGN §2).
 */
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { ackCollector, connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'
import { metricValue } from './helpers.js'

vi.setConfig({ hookTimeout: 240_000 })

describe('refusal logging', () => {
  let system: TestSystem
  const lines: Array<{ msg: string, refusalsNotLoggedBefore?: number }> = []
  const id = 'btn-spray-001'
  let secret: string

  beforeAll(async () => {
    const sink = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
    system = await startSystem({ gatewayLog: pino({ level: 'info' }, sink) })
    secret = await system.provision(id)
  })

  afterAll(async () => {
    await system?.stop()
  })

  it('logs a few lines of a device spraying junk, and still answers, keeps and counts every publish', async () => {
    const device = await connectDevice(system.mqttUrl, id, id, secret)
    const acks = await ackCollector(device, id)
    const spray = 200
    await Promise.all(Array.from({ length: spray }, (_, i) => device.publishAsync(topics.event(id), `junk ${i}`, { qos: 1 })))
    await expect.poll(() => acks.acks.filter((a) => a.state === 'rejected').length, { timeout: 10_000 }).toBe(spray)
    expect(system.gateway.deadLetters.recent(1000)).toHaveLength(spray)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total')).toBe(spray)
    expect(lines.filter((l) => l.msg === 'event rejected')).toHaveLength(5)
    await device.endAsync()
  })

  it('logs a few lines of a wrong-password flood, and counts every attempt', async () => {
    const attempts = 40
    const results = await Promise.allSettled(Array.from({ length: attempts }, (_, i) => connectDevice(system.mqttUrl, `${id}:guess${i}`, id, `wrong-${i}`)))
    expect(results.every((r) => r.status === 'rejected')).toBe(true)
    const refused = await metricValue(system.gateway, 'sos_gateway_connections_refused_total')
    expect(refused).toBe(attempts)
    expect(lines.filter((l) => l.msg === 'connection refused')).toHaveLength(5)
  })
})
