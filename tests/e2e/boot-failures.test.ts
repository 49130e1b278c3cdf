/**
 * A start that fails on its settings or on the machine says so in one line, naming what to
 * change, and ends with an exit code a service manager can act on: 2 for a setting (a restart
 * cannot help), 1 for the machine or a service around it (review 63: each of these printed a
 * stack trace; a mistyped MQTT_PORT was found only after the server had migrated and listened).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), 'sos-boot-failures-'))
const aFile = join(scratch, 'a-file')
writeFileSync(aFile, '')
const postgres = new URL(process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres')

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

async function start (script: string, env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: root,
    env: {
      ...process.env, MQTT_PORT: '0', MQTT_WS_PORT: '0', HTTP_PORT: '0', GATEWAY_HTTP_PORT: '0', DATA_DIR: join(scratch, 'data'),
      ADMIN_TOKEN: 'admin-token-for-boot-failure-tests', GATEWAY_TOKEN: 'gateway-token-for-boot-failure-tests', LOG_LEVEL: 'info', DATABASE_URL: '', ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearTimeout(timer)
  return { code, output }
}

const noStack = (output: string) => expect(output, output).not.toMatch(/\n\s+at .*[.(](ts|js|mjs):\d+/)

describe('a start that cannot run says why in one line', () => {
  it.concurrent('LOG_LEVEL mistyped: the levels, exit 2', async () => {
    const { code, output } = await start('start.ts', { LOG_LEVEL: 'loud' })
    expect(code).toBe(2)
    expect(output).toMatch(/LOG_LEVEL=loud is not a log level: one of trace, debug, info/)
    noStack(output)
  }, 120_000)

  it.concurrent('a gateway setting mistyped ends the start before the server listens', async () => {
    const { code, output } = await start('start.ts', { MQTT_PORT: 'abc' })
    expect(code).toBe(2)
    expect(output).toMatch(/MQTT_PORT must be a port number/)
    expect(output).not.toMatch(/listening|migrat/i)
    noStack(output)
  }, 120_000)

  it.concurrent('two listeners given one port: both named, not "another program"', async () => {
    const { code, output } = await start('start.ts', { MQTT_PORT: '47991', HTTP_PORT: '47991' })
    expect(code).toBe(2)
    expect(output).toMatch(/HTTP_PORT and MQTT_PORT are both 47991/)
    expect(output).not.toMatch(/another program/)
    noStack(output)
  }, 120_000)

  it.concurrent('DATA_DIR under a file: the path, exit 1', async () => {
    const { code, output } = await start('start.ts', { DATA_DIR: join(aFile, 'data') })
    expect(code).toBe(1)
    expect(output).toMatch(/a-file\/data\S*: part of it is a file, not a directory/)
    noStack(output)
  }, 120_000)

  it.concurrent('the server alone, its database not listening: where it looked, exit 1', async () => {
    const { code, output } = await start('server/main.ts', { DATABASE_URL: `postgres://postgres@${postgres.hostname}:1/sos` })
    expect(code).toBe(1)
    expect(output).toMatch(/the database at .*:1 refused the connection: is PostgreSQL running there\? \(DATABASE_URL\)/)
    noStack(output)
  }, 120_000)

  it.concurrent('the server alone, a database that does not exist: said so', async () => {
    const url = new URL(postgres)
    url.pathname = '/sos_no_such_database_for_boot_tests'
    const { code, output } = await start('server/main.ts', { DATABASE_URL: url.href })
    expect(code).toBe(1)
    expect(output).toMatch(/the database refused this server: the database does not exist/)
    noStack(output)
  }, 120_000)

  it.concurrent('the gateway alone, its TLS certificate missing: the file named', async () => {
    const { code, output } = await start('gateway/main.ts', {
      SERVER_URL: 'http://127.0.0.1:1', TLS_CERT_FILE: join(scratch, 'no-cert.pem'), TLS_KEY_FILE: join(scratch, 'no-key.pem'), MQTT_TLS_PORT: '0', DATA_DIR: join(scratch, 'gw')
    })
    expect(code).toBe(1)
    expect(output).toMatch(/no-(cert|key)\.pem does not exist/)
    noStack(output)
  }, 120_000)
})
