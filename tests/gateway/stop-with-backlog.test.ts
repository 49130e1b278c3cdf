/**
 * A gateway stopped while the server is away says what it leaves for the next start (review 63:
 * three presses waited in the outbox, and the only line was "closing"; a maintainer could not
 * tell whether they were dropped).
 */
import { createServer, request as httpRequest, type Server } from 'node:http'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { connectDevice, startSystem, type TestSystem } from '../helpers/system.js'
import { topics } from '../../protocol/index.js'

vi.setConfig({ hookTimeout: 240_000 })

describe('a gateway stopped with events not yet confirmed', () => {
  let system: TestSystem
  let proxy: Server
  /** While set, the server "is away": every request from the gateway is answered 503. */
  let away = false
  const lines: Array<{ msg: string, events?: number }> = []
  const id = 'btn-backlog-001'
  let secret: string

  beforeAll(async () => {
    const sink = new Writable({ write (chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done() } })
    system = await startSystem({
      gatewayLog: pino({ level: 'info' }, sink),
      gatewayServerUrl: async (serverUrl) => {
        const target = new URL(serverUrl)
        proxy = createServer((req, res) => {
          if (away) { res.writeHead(503).end(); req.resume(); return }
          const upstream = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode!, answer.headers)
            answer.pipe(res)
          })
          upstream.on('error', () => res.destroy())
          req.pipe(upstream)
        })
        await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
        return `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
      }
    })
    secret = await system.provision(id)
  })

  afterAll(async () => {
    await system?.stop()
    proxy?.close()
  })

  it('logs how many events it keeps for the next start', async () => {
    const device = await connectDevice(system.mqttUrl, id, id, secret)
    away = true
    for (let seq = 1; seq <= 3; seq++) await device.publishAsync(topics.event(id), JSON.stringify({ seq, boot: 'b1', type: 'press' }), { qos: 1 })
    await device.endAsync()
    await system.stopGateway()
    expect(lines.find((l) => /kept in the outbox and sent after the next start/.test(l.msg))).toMatchObject({ events: 3 })
    away = false
    await system.startGateway()
  })
})
