/** The gateway as a child process (`node --import tsx gateway/main.ts`), so a test can SIGKILL it. */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface GatewayProcess {
  child: ChildProcess
  mqttPort: number
  httpPort?: number
  /** Every log line the process wrote. */
  logs: string[]
  exited: Promise<number | null>
}

export function spawnGateway (env: Record<string, string>): Promise<GatewayProcess> {
  // One process, no wrapper: a SIGKILL must hit the gateway itself, not a launcher.
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: process.cwd(),
    env: { ...process.env, MQTT_HOST: '127.0.0.1', MQTT_PORT: '0', MQTT_WS_PORT: '0', GATEWAY_HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const logs: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`gateway did not start: ${logs.join('\n')}`)) }, 60_000)
    createInterface({ input: child.stderr! }).on('line', (line) => logs.push(line))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line)
      try {
        const entry = JSON.parse(line) as { msg?: string, mqtt?: number, http?: number }
        if (entry.msg === 'gateway listening' && entry.mqtt) {
          clearTimeout(timer)
          resolve({ child, mqttPort: entry.mqtt, httpPort: entry.http, logs, exited })
        }
      } catch { /* not JSON: ignore */ }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited with ${code}: ${logs.join('\n')}`)) })
  })
}
