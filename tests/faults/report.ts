/** Recovery times and exactly-once outcomes, printed as a table at the end of each scenario. */

export interface Recovery {
  fault: string
  /** ms from the fault until the flow was back (see each scenario for what "back" means). */
  recoveryMs: number
}

export function printRecoveries (title: string, recoveries: Recovery[], outcome: { acked: number, lost: number, duplicated: number, extra: number }): void {
  const byFault = new Map<string, number[]>()
  for (const r of recoveries) byFault.set(r.fault, [...byFault.get(r.fault) ?? [], r.recoveryMs])
  const lines = [`\n${title}: ${outcome.acked} events PUBACKed, ${outcome.lost} lost, ${outcome.duplicated} duplicated (${outcome.extra} stored without a PUBACK the device saw)`]
  for (const [fault, times] of byFault) {
    const sorted = [...times].sort((a, b) => a - b)
    const median = sorted[Math.floor(sorted.length / 2)]!
    lines.push(`  ${fault.padEnd(44)} ×${String(times.length).padStart(3)}  recovery median ${median} ms, max ${sorted.at(-1)} ms`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}
