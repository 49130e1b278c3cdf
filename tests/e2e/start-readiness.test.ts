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
import { createInterface } from 'node:readline'
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

  /**
   * Starts `npm start` with MQTT on a port picked beforehand (so it can be tried before the
   * process says where it listens) and HTTP on one it picks itself, learnt from its log line
   * (so no other test's server can answer for it). Resolves with both once HTTP listens, or
   * `undefined` when the MQTT port was taken in the meantime by another test.
   */
  async function launch (): Promise<{ httpPort: number, mqttPort: number } | undefined> {
    const mqttPort = await freePort()
    const child = start = spawn(process.execPath, ['--import', 'tsx', 'start.ts'], {
      cwd: root,
      env: { ...process.env, MQTT_PORT: String(mqttPort), MQTT_WS_PORT: '0', HTTP_PORT: '0', GATEWAY_HTTP_PORT: '0', DATA_DIR: dataDir, ADMIN_TOKEN: 'admin_readiness_test_token', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stderr!.on('data', (chunk) => { output += chunk })
    return new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! })
      lines.on('line', (line) => {
        output += line + '\n'
        const port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1]
        if (port) resolve({ httpPort: Number(port), mqttPort })
      })
      child.once('exit', (code) => output.includes('is in use by another program') ? resolve(undefined) : reject(new Error(`npm start exited (${code}): ${output}`)))
    })
  }

  it('answers /healthz and /readyz 200 only once the MQTT listener accepts devices', async () => {
    let ports = await launch()
    for (let attempt = 1; !ports && attempt < 3; attempt++) ports = await launch()
    if (!ports) throw new Error('no free MQTT port in three attempts')
    const { httpPort, mqttPort } = ports
    const deadline = Date.now() + 60_000
    for (;;) {
      expect(start!.exitCode, 'npm start exited').toBeNull()
      expect(Date.now(), 'no 200 from /healthz within 60 s').toBeLessThan(deadline)
      const status = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.status, () => 0)
      if (status === 200) break
      expect(status).toBe(503)
      // Asked a moment later, /readyz may already say ready: the gateway came up in between.
      const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`)
      if (ready.status === 200) break
      expect(ready.status).toBe(503)
      expect(await ready.json()).toMatchObject({ code: 'STARTING' })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    // Healthy, so a device connecting now must not be refused.
    expect(await accepts(mqttPort)).toBe(true)
    expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status).toBe(200)
  }, 120_000)
  it('names the variable that moves a port in use, and shows the admin token it generated, once', async () => {
    // It ended in a raw EADDRINUSE stack trace, the admin token it had just generated and kept
    // never printed (the next start only names its file).
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '0.0.0.0', resolve))
    const dir = mkdtempSync(join(tmpdir(), 'sos-start-taken-'))
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'start.ts'], {
        cwd: root,
        env: { ...process.env, MQTT_PORT: String((taken.address() as { port: number }).port), MQTT_WS_PORT: '0', HTTP_PORT: '0', GATEWAY_HTTP_PORT: '0', DATA_DIR: dir, ADMIN_TOKEN: '', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe']
      })
      let output = ''
      child.stdout!.on('data', (chunk) => { output += chunk })
      child.stderr!.on('data', (chunk) => { output += chunk })
      const code = await new Promise((resolve) => child.once('exit', resolve))
      expect(code).toBe(2)
      expect(output).toMatch(/is in use by another program: choose another with MQTT_PORT=/)
      expect(output).not.toMatch(/at .*\.(ts|js):\d+/)
      expect(output).toMatch(/admin token generated on this start: sos_\S+/)
    } finally {
      taken.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
