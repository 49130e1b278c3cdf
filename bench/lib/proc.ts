/**
 * CPU time and memory of other processes, read from /proc (Linux): how the benchmark charges
 * the gateway, the server, PostgreSQL and Mosquitto for their work without instrumenting them.
 */
import { readFileSync } from 'node:fs'
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

/** Pids of processes with exactly this name (pgrep -x), none when pgrep finds nothing. */
export function pidsNamed (name: string): number[] {
  return safeExec('pgrep', ['-x', name]).split('\n').filter(Boolean).map(Number)
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
  private readonly start: number
  constructor (private readonly pids: () => number[]) {
    this.start = cpuMicrosOf(pids())
  }

  /** Microseconds of CPU used since construction. */
  used (): number {
    return cpuMicrosOf(this.pids()) - this.start
  }
}
