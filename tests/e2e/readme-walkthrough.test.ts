/**
 * README's "Press a button by hand", run as written: its shell blocks, in order, in one bash
 * that stops at an unset variable or a failed command (`-euo pipefail`), against a running
 * server and gateway. The blocks find the ports and the admin token through the variables
 * `npm start` reads (HTTP_PORT, MQTT_PORT, DATA_DIR/admin-token), as a reader's shell would.
 * Needs curl, mosquitto_pub and mosquitto_sub (skipped without them).
 */
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSystem, type TestSystem } from '../helpers/system.js'

const hasTools = spawnSync('sh', ['-c', 'command -v curl && command -v mosquitto_pub && command -v mosquitto_sub'], { stdio: 'ignore' }).status === 0

/** The `sh` blocks of README's walkthrough section, in order. */
function walkthroughBlocks (): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('## Press a button by hand')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!)
}

/** Runs `script` in bash; its process group is killed if it outlives `timeoutMs`. */
function runBash (script: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    // No rc files: a bash whose stdin is a socket (a pipe, in libuv) reads them, as if run by sshd.
    const child = spawn('bash', ['--noprofile', '--norc', '-euo', 'pipefail', '-c', script], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch {} }, timeoutMs)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

describe.skipIf(!hasTools)('README walkthrough', () => {
  let system: TestSystem

  beforeAll(async () => { system = await startSystem() })
  afterAll(async () => { await system?.stop() })

  it('provisions, presses, hears received, acknowledges and hears acknowledged, pasted in order', async () => {
    const blocks = walkthroughBlocks()
    expect(blocks.length).toBeGreaterThanOrEqual(2)
    // As on a first `npm start`: the generated admin token is in DATA_DIR/admin-token.
    writeFileSync(join(system.dataDir, 'admin-token'), `${system.adminToken}\n`)
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      DATA_DIR: system.dataDir,
      HTTP_PORT: String(system.server.port),
      MQTT_PORT: String(system.gateway.ports.mqtt)
    }
    // `wait`: the listener's acks are in the output once it ends (after its two).
    const { code, stdout, stderr } = await runBash(`${blocks.join('\n')}\nwait\n`, env, 25_000)
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })

    const [alert] = (await system.api('GET', '/v1/alerts?deviceId=btn-apd-001')).body
    expect(alert).toMatchObject({ state: 'acknowledged', deviceName: 'Nguyễn Văn Quá gate' })
    expect(stdout).toContain(`{"seq":1,"state":"received","alertId":"${alert.id}"}`)
    expect(stdout).toContain(`{"seq":1,"state":"acknowledged","alertId":"${alert.id}"}`)
  })
})
