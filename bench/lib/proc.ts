/**
 * CPU time and memory of other processes, read from /proc (Linux): how the benchmark charges
 * the gateway, the server, PostgreSQL and Mosquitto for their work without instrumenting them.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

const CLOCK_TICKS = Number(safeExec('getconf', ['CLK_TCK'])) || 100

/** User + system CPU time of a process so far, in microseconds (0 when it is gone). */
export function cpuMicros (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15)
    return ticks * 1e6 / CLOCK_TICKS
  } catch {
    return 0
  }
}

/** Summed CPU time of several processes (PostgreSQL's backends, say). */
export function cpuMicrosOf (pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuMicros(pid), 0)
}

/** Resident set size in bytes. */
export function rssBytes (pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Soft open-files limit of a process. */
export function openFilesLimit (pid: number): number {
  const match = /Max open files\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
  return match?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match?.[1] ?? 1024)
}

/** Pids of processes with exactly this name (as `pgrep -x`), read from /proc: cheap enough to ask often. */
export function pidsNamed (name: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trimEnd() === name) pids.push(Number(entry))
    } catch {} // gone meanwhile
  }
  return pids
}

function safeExec (cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

/** CPU of a set of processes between two moments. */
export class CpuMeter {
  /** Each process's CPU at its last reading. */
  private readonly last = new Map<number, number>()
  private total = 0
  private readonly timer: NodeJS.Timeout

  /**
   * Read per process, often: PostgreSQL's backends come and go during a run, and a sum over
   * whichever exist at the end lost the CPU of those that had exited (it once read negative).
   * A process that exits keeps what it used up to its last reading; one that starts during the
   * run counts from its start.
   */
  constructor (private readonly pids: () => number[]) {
    for (const pid of pids()) this.last.set(pid, cpuMicros(pid))
    this.timer = setInterval(() => this.sample(), 250).unref()
  }

  /** Microseconds of CPU used since construction (it stops sampling in the background). */
  used (): number {
    clearInterval(this.timer)
    this.sample()
    return this.total
  }

  private sample (): void {
    for (const pid of this.pids()) {
      const now = cpuMicros(pid)
      if (now === 0) continue
      this.total += Math.max(0, now - (this.last.get(pid) ?? 0))
      this.last.set(pid, now)
    }
  }
}

/** The whole machine's CPU time so far, in clock ticks: busy (neither idle nor waiting for I/O), stolen by the hypervisor, total. */
function machineTicks (): { busy: number, steal: number, total: number } {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.map(Number) as number[]
    const total = user! + nice! + system! + idle! + iowait! + irq! + softirq! + steal!
    return { busy: total - idle! - iowait!, steal: steal!, total }
  } catch {
    return { busy: 0, steal: 0, total: 0 }
  }
}

/** A thread's time on a CPU and time runnable but waiting for one, in ns (Linux schedstat). */
function threadSchedule (pid: number, tid = pid): { runNs: number, waitNs: number } {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number)
    return { runNs: run!, waitNs: wait! }
  } catch {
    return { runNs: 0, waitNs: 0 }
  }
}

export interface Contention {
  /** Share of all cores busy, %. */
  machineBusyPercent: number
  /** Share of all cores the hypervisor gave to other guests, %. */
  machineStealPercent: number
  /** Per process (its main thread, where its event loop runs): % of the time on a CPU, and % of the time ready to run but waiting for a CPU. */
  mainThreads: Record<string, { cpuPercent: number, waitingPercent: number }>
}

/**
 * How contended the CPUs were between two moments. On a machine that runs the devices, the
 * gateway, the server and PostgreSQL at once, latency at high rates is mostly time spent
 * waiting for a core: this says how much, so the figures can be read for what they are.
 */
export class ContentionMeter {
  private readonly startedAt = process.hrtime.bigint()
  private readonly machine = machineTicks()
  private readonly threads: Map<string, { pid: number, runNs: number, waitNs: number }>

  constructor (processes: Record<string, number>) {
    this.threads = new Map(Object.entries(processes).map(([name, pid]) => [name, { pid, ...threadSchedule(pid) }]))
  }

  read (): Contention {
    const wallNs = Number(process.hrtime.bigint() - this.startedAt)
    const machine = machineTicks()
    const total = Math.max(1, machine.total - this.machine.total)
    const percent = (part: number, whole: number) => Math.round(1000 * part / whole) / 10
    const mainThreads: Contention['mainThreads'] = {}
    for (const [name, start] of this.threads) {
      const now = threadSchedule(start.pid)
      mainThreads[name] = { cpuPercent: percent(now.runNs - start.runNs, wallNs), waitingPercent: percent(now.waitNs - start.waitNs, wallNs) }
    }
    return {
      machineBusyPercent: percent(machine.busy - this.machine.busy, total),
      machineStealPercent: percent(machine.steal - this.machine.steal, total),
      mainThreads
    }
  }
}
