/**
 * `npm start` runs the server and the gateway in one process. The server listens first (the
 * gateway loads its credentials from it), so its health probes must not say "up" before
 * devices can connect: a script or an orchestrator that waits for /healthz and then connects a
 * device must find the MQTT listener there.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '../..')

/** A port free right now (as a user picks one for MQTT_PORT and HTTP_PORT). */
function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

/** Whether a TCP connection to the port is accepted (not refused). */
function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

describe('npm start readiness', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sos-start-'))
  let start: ChildProcess | undefined

  afterAll(async () => {
    if (start && start.exitCode === null) {
      const exited = new Promise((resolve) => start!.once('exit', resolve))
      start.kill('SIGTERM')
      await exited
    }
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('answers /healthz and /readyz 200 only once the MQTT listener accepts devices', async () => {
    const [mqttPort, httpPort, wsPort] = [await freePort(), await freePort(), await freePort()]
    start = spawn(process.execPath, ['--import', 'tsx', 'start.ts'], {
      cwd: root,
      env: { ...process.env, MQTT_PORT: String(mqttPort), MQTT_WS_PORT: String(wsPort), HTTP_PORT: String(httpPort), GATEWAY_HTTP_PORT: '0', DATA_DIR: dataDir, ADMIN_TOKEN: 'admin_readiness_test_token', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit']
    })
    const seen = new Set<number>()
    const deadline = Date.now() + 60_000
    for (;;) {
      expect(start.exitCode, 'npm start exited').toBeNull()
      expect(Date.now(), 'no 200 from /healthz within 60 s').toBeLessThan(deadline)
      const status = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.status, () => 0)
      seen.add(status)
      if (status === 200) break
      if (status === 503) expect(await (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).json()).toMatchObject({ code: 'STARTING' })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    // Healthy, so a device connecting now must not be refused.
    expect(await accepts(mqttPort)).toBe(true)
    expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status).toBe(200)
    expect([...seen].every((s) => s === 0 || s === 503 || s === 200)).toBe(true)
  }, 90_000)
})
