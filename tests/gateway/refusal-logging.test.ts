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
  const lines: Array<{ msg: string, time: number, notLogged?: number }> = []
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

  it('logs a few lines of a device spraying junk, and still answers, accounts for and counts every publish', async () => {
    const device = await connectDevice(system.mqttUrl, id, id, secret)
    const acks = await ackCollector(device, id)
    const spray = 200
    const started = Date.now()
    await Promise.all(Array.from({ length: spray }, (_, i) => device.publishAsync(topics.event(id), `junk ${i}`, { qos: 1 })))
    await expect.poll(() => acks.acks.filter((a) => a.state === 'rejected').length, { timeout: 10_000 }).toBe(spray)
    // A few kept whole, the rest held back and told in a summary (gateway/dead-letter-budget.ts):
    // every one is accounted for.
    const kept = (await system.gateway.deadLetters.recent(1000)).length
    expect(kept).toBeGreaterThan(0)
    expect(kept + await metricValue(system.gateway, 'sos_gateway_dead_letters_held_back_total')).toBe(spray)
    expect(await metricValue(system.gateway, 'sos_gateway_events_rejected_total')).toBe(spray)
    // Five lines per 10 s window (two windows if a slow machine took longer), then what each
    // window held back, in one line: every refusal is accounted for.
    const windows = Math.ceil((Date.now() - started) / 10_000)
    const logged = lines.filter((l) => l.msg === 'event rejected').length
    expect(logged).toBeLessThanOrEqual(5 * windows)
    await expect.poll(() => logged + lines.filter((l) => l.msg === 'more refusals of this device, not logged one by one')
      .reduce((n, l) => n + l.notLogged!, 0), { timeout: 15_000 }).toBe(spray)
    await device.endAsync()
  })

  it('logs a few lines of a wrong-password flood, and counts every attempt', async () => {
    const attempts = 40
    const started = Date.now()
    const results = await Promise.allSettled(Array.from({ length: attempts }, (_, i) => connectDevice(system.mqttUrl, `${id}:guess${i}`, id, `wrong-${i}`)))
    expect(results.every((r) => r.status === 'rejected')).toBe(true)
    await expect.poll(() => metricValue(system.gateway, 'sos_gateway_connections_refused_total'), { timeout: 15_000 }).toBe(attempts)
    const windows = Math.ceil((Date.now() - started) / 10_000)
    expect(lines.filter((l) => l.msg === 'connection refused').length).toBeLessThanOrEqual(5 * windows)
  })
})
