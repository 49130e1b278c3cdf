/**
 * `npm run sim` against `npm start`, both as child processes on ephemeral ports, configured
 * the way a user does it: through MQTT_PORT, HTTP_PORT, ADMIN_TOKEN and DATA_DIR only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { planFleet } from '../../firmware-sim/sim/fleet-plan.js'

const root = join(import.meta.dirname, '../..')

function run (command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.stderr.on('data', (chunk) => { stderr += chunk })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('npm run sim against npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sos-sim-'))
  const adminToken = `admin_${randomBytes(12).toString('hex')}`
  let start: ChildProcess
  let env: NodeJS.ProcessEnv
  let serverUrl: string

  const api = async (path: string) => {
    const response = await fetch(serverUrl + path, { headers: { authorization: `Bearer ${adminToken}` } })
    return response.json() as Promise<any>
  }

  beforeAll(async () => {
    start = spawn(process.execPath, ['--import', 'tsx', 'start.ts'], {
      cwd: root,
      env: { ...process.env, MQTT_PORT: '0', MQTT_WS_PORT: '0', HTTP_PORT: '0', DATA_DIR: dataDir, ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    let banner = ''
    const ports = await new Promise<{ mqtt: string, http: string }>((resolve, reject) => {
      start.stdout!.on('data', (chunk) => {
        banner += chunk
        const mqtt = /MQTT\s+mqtt:\/\/localhost:(\d+)/.exec(banner)?.[1]
        const http = /HTTP API, docs\s+http:\/\/localhost:(\d+)/.exec(banner)?.[1]
        if (mqtt && http) resolve({ mqtt, http })
      })
      start.once('exit', (code) => reject(new Error(`npm start exited with ${code}: ${banner}`)))
    })
    env = { MQTT_PORT: ports.mqtt, HTTP_PORT: ports.http, ADMIN_TOKEN: adminToken, DATA_DIR: dataDir }
    serverUrl = `http://127.0.0.1:${ports.http}`
  }, 120_000)

  afterAll(async () => {
    if (start && start.exitCode === null) {
      const exited = new Promise((resolve) => start.once('exit', resolve))
      start.kill('SIGTERM')
      await exited
    }
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('provisions 40 devices over An Phú Đông, raises alerts, and nothing is refused', async () => {
    const result = await run('npm', ['run', '-s', 'sim', '--', '--provision', '--devices', '40', '--duration', '10', '--scenario', 'demo', '--json'], env)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!)
    expect(summary).toMatchObject({ devices: 40, everConnected: 40, refused: 0, dropped: 0 })
    // Everything but what the device that loses power had in flight reached the gateway.
    expect(summary.acked).toBeGreaterThan(summary.sent - 3)
    expect(summary.acks.received).toBeGreaterThan(0)

    const devices = await api('/v1/devices?limit=1000') as any[]
    const simDevices = devices.filter((d) => d.id.startsWith('sim-'))
    expect(simDevices).toHaveLength(40)
    expect(new Set(simDevices.map((d) => d.kind))).toEqual(new Set(['button', 'kiosk', 'counter']))
    expect(new Set(simDevices.map((d) => d.zone)).size).toBeGreaterThan(1)
    for (const d of simDevices) {
      expect(Math.abs(d.lat - 10.86)).toBeLessThan(0.03)
      expect(Math.abs(d.lon - 106.70)).toBeLessThan(0.03)
    }
    expect(simDevices.filter((d) => d.kind === 'counter').every((d) => d.silent && d.hasPin)).toBe(true)

    const alerts = await api('/v1/alerts?kind=panic') as any[]
    expect(alerts.length).toBeGreaterThan(0)
    // The prank burst joined one alert instead of opening eight.
    expect(Math.max(...alerts.map((a) => a.pressCount))).toBeGreaterThanOrEqual(8)
  }, 90_000)

  it('exits non-zero when the gateway refuses the devices', async () => {
    const stateDir = join(dataDir, 'wrong-secrets')
    mkdirSync(stateDir, { recursive: true })
    const fleet = planFleet(2, 'sim').map((d) => ({ ...d, secret: 'not-the-secret' }))
    writeFileSync(join(stateDir, 'fleet.json'), JSON.stringify(fleet))
    const result = await run('npm', ['run', '-s', 'sim', '--', '--devices', '2', '--duration', '1', '--state-dir', stateDir], env)
    expect(result.code).toBe(1)
    expect(result.stdout).toMatch(/REFUSED by the gateway: bad username or password/)
  }, 60_000)

  it('runs until interrupted with --duration 0, then ends cleanly', async () => {
    // It asked a timer for more than 2^31-1 ms, which Node fires after 1 ms: an endless run
    // ended after about a second.
    const child = spawn(process.execPath, ['--import', 'tsx', 'firmware-sim/sim/main.ts', '--provision', '--devices', '1', '--duration', '0', '--prefix', 'endless'],
      { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (chunk) => { output += chunk })
    child.stderr!.on('data', (chunk) => { output += chunk })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    await expect.poll(() => output, { timeout: 60_000 }).toMatch(/until interrupted/)
    await new Promise((resolve) => setTimeout(resolve, 5000))
    expect(child.exitCode, output).toBeNull()
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    expect(output).not.toMatch(/TimeoutOverflowWarning/)
  }, 120_000)

  it('exits non-zero when provisioning is refused', async () => {
    const result = await run('npm', ['run', '-s', 'sim', '--', '--provision', '--devices', '1', '--duration', '1', '--token', 'wrong-token', '--prefix', 'nope'], env)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/provisioning nope-btn-0001 refused: 401/)
  }, 60_000)
})
