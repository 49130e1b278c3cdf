/**
 * The server and the gateway as separate OS processes (their real entry points, configured by
 * environment as in the README), so they can be measured from /proc and killed with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

export interface Launched {
  child: ChildProcess
  pid: number
  /** The pino line that announced it was listening. */
  ready: Record<string, unknown>
  /** The inspector's WebSocket address, when started with `inspect`. */
  inspectorUrl?: string
  /** Resolves when the process has exited. */
  exited: Promise<number | null>
  stop(signal?: NodeJS.Signals): Promise<void>
}

export interface LaunchOptions {
  entry: 'server/main.ts' | 'gateway/main.ts'
  env: Record<string, string>
  /** The log message that says it is up. */
  readyMessage: string
  /** Raise the open-files limit (root can lift the hard limit too) with prlimit. */
  openFiles?: number
  /** Open the V8 inspector on a free local port (the bench asks it for a full GC before reading memory). */
  inspect?: boolean
  timeoutMs?: number
}

/** Starts a process and resolves once it logged `readyMessage`; rejects if it exits first. */
export function launch (options: LaunchOptions): Promise<Launched> {
  // BENCH_PROFILE=dir: a V8 CPU profile of each process, written to dir when it exits cleanly.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []
  const inspect = options.inspect ? ['--inspect=127.0.0.1:0'] : []
  // As `npm run gateway` and the compose file start it (see package.json).
  const young = options.entry === 'gateway/main.ts' ? ['--max-semi-space-size=64'] : []
  const nodeArgs = [...profile, ...inspect, ...young, '--import', tsxLoader, join(repoRoot, options.entry)]
  const [cmd, args] = options.openFiles
    // prlimit execs node in place: the pid we get is node's own, which /proc measurements need.
    ? ['prlimit', [`--nofile=${options.openFiles}:${options.openFiles}`, process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs]
  const child = spawn(cmd, args as string[], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const errors: string[] = []
  let inspectorUrl: string | undefined
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = chunk.toString()
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(text)?.[1]
    errors.push(text)
    if (errors.length > 50) errors.shift()
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${options.entry} not ready in time: ${errors.join('')}`)) }, options.timeoutMs ?? 120_000)
    const lines = createInterface({ input: child.stdout! })
    let up = false
    lines.on('line', (line) => {
      if (up || !line.startsWith('{')) return
      let entry: Record<string, unknown>
      try { entry = JSON.parse(line) } catch { return }
      if (entry.msg !== options.readyMessage) return
      up = true
      clearTimeout(timer)
      resolve({
        child,
        pid: child.pid!,
        ready: entry,
        get inspectorUrl () { return inspectorUrl },
        exited,
        async stop (signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          await exited
        }
      })
    })
    exited.then((code) => { clearTimeout(timer); if (!up) reject(new Error(`${options.entry} exited (${code}) before it was ready: ${errors.join('')}`)) })
  })
}

export interface ServerProcessOptions {
  databaseUrl: string
  dataDir: string
  adminToken: string
  gatewayToken: string
  httpPort?: number
  /** How long it may take to start (a busy 2-core machine can take many seconds). */
  timeoutMs?: number
}

export async function launchServer (o: ServerProcessOptions): Promise<Launched & { url: string, port: number }> {
  const launched = await launch({
    entry: 'server/main.ts',
    readyMessage: 'server listening',
    timeoutMs: o.timeoutMs,
    env: {
      DATABASE_URL: o.databaseUrl, DATA_DIR: o.dataDir, ADMIN_TOKEN: o.adminToken, GATEWAY_TOKEN: o.gatewayToken,
      HTTP_PORT: String(o.httpPort ?? 0), HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info'
    }
  })
  const port = Number(new URL(String(launched.ready.url)).port)
  return { ...launched, port, url: `http://127.0.0.1:${port}` }
}

export interface GatewayProcessOptions {
  serverUrl: string
  gatewayToken: string
  dataDir: string
  mqttPort?: number
  openFiles?: number
  inspect?: boolean
  timeoutMs?: number
  /** The per-device limits as a ward runs them (part 5), not opened for the bench devices. */
  wardLimits?: boolean
  /** More settings, as environment variables. */
  env?: Record<string, string>
}

export async function launchGateway (o: GatewayProcessOptions): Promise<Launched & { mqttPort: number }> {
  const launched = await launch({
    entry: 'gateway/main.ts',
    readyMessage: 'gateway listening',
    openFiles: o.openFiles,
    inspect: o.inspect,
    timeoutMs: o.timeoutMs,
    env: {
      SERVER_URL: o.serverUrl, GATEWAY_TOKEN: o.gatewayToken, DATA_DIR: o.dataDir, GATEWAY_ID: 'gw-bench',
      MQTT_HOST: '127.0.0.1', MQTT_PORT: String(o.mqttPort ?? 0), MQTT_WS_PORT: '0', LOG_LEVEL: 'info',
      // Its health and metrics endpoint on a free port, not 8081, which another gateway may hold.
      GATEWAY_HTTP_PORT: '0',
      // A few hundred bench devices stand in for a city's worth, each publishing far faster than
      // a real device; the per-device limiter would shed their routine events by design, so it
      // is opened here: the bench measures the pipeline, not the limiter. So are the extra
      // connections a device may hold (the connection levels open tens of thousands under a few
      // hundred ids).
      ...(o.wardLimits ? {} : { RATE_LIMIT_BURST: '1000000000', MQTT_EXTRA_CONNECTIONS_PER_DEVICE: '1000000000' }),
      ...o.env
    }
  })
  return { ...launched, mqttPort: Number(launched.ready.mqtt) }
}
