/**
 * A real disk that hangs, for the gateway's data directory: an ext4 filesystem in a file on
 * a second ext4 filesystem, each on a loop device. Freezing the outer one (`fsfreeze`) stops
 * the inner one's I/O from reaching its "disk": writes still land in the page cache, but an
 * fsync waits until the outer filesystem thaws. That is how an SD card wearing out, a failing
 * drive or a stalled storage network looks to SQLite, with nothing mocked.
 *
 * Needs root, loop devices, mkfs.ext4 and fsfreeze (this kind of machine has them all).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface HangingDisk {
  /** A directory on the disk that can hang. */
  dir: string
  /**
   * From now on, nothing written there reaches the disk, and an fsync waits: for `atMostMs`
   * at most. A process of its own thaws it then, since a test whose own thread got stuck on
   * the disk (a write in this very process) could never call `resume`.
   */
  hang(atMostMs?: number): void
  resume(): void
  dispose(): void
}

const run = (command: string, ...args: string[]) => execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })

/** Why a hanging disk cannot be made here, or undefined when it can. */
export function hangingDiskMissing (): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting loop devices needs root'
  for (const tool of ['mkfs.ext4', 'fsfreeze', 'losetup']) {
    try { run('sh', '-c', `command -v ${tool}`) } catch { return `${tool} is not installed` }
  }
  return undefined
}

export function createHangingDisk (sizeMb = 64): HangingDisk {
  const base = mkdtempSync(join(tmpdir(), 'sos-hanging-disk-'))
  const outer = join(base, 'outer')
  const inner = join(base, 'inner')
  mkdirSync(outer)
  mkdirSync(inner)
  const mounted: string[] = []
  let frozen = false
  let thaw: ChildProcess | undefined
  const disk: HangingDisk = {
    dir: join(inner, 'data'),
    hang (atMostMs = 30_000) {
      run('sync', '-f', inner)
      run('fsfreeze', '-f', outer)
      frozen = true
      thaw = spawn('sh', ['-c', `sleep ${atMostMs / 1000}; fsfreeze -u '${outer}'`], { detached: true, stdio: 'ignore' })
      thaw.unref()
    },
    resume () {
      if (!frozen) return
      thaw?.kill()
      frozen = false
      try {
        run('fsfreeze', '-u', outer)
      } catch (err) {
        // Thawed already by the watchdog (a test held up longer than `atMostMs`): not frozen.
        if (!/Invalid argument/.test(String((err as { stderr?: Buffer }).stderr ?? err))) throw err
      }
    },
    dispose () {
      try { disk.resume() } catch {}
      // Lazily: a process that still holds a file there (a gateway that failed to stop) must
      // not keep the test from ending.
      for (const point of mounted.reverse()) try { run('umount', '-l', point) } catch {}
      rmSync(base, { recursive: true, force: true })
    }
  }
  try {
    run('truncate', '-s', `${sizeMb * 2 + 16}M`, join(base, 'outer.img'))
    run('mkfs.ext4', '-q', join(base, 'outer.img'))
    run('mount', '-o', 'loop', join(base, 'outer.img'), outer)
    mounted.push(outer)
    run('truncate', '-s', `${sizeMb}M`, join(outer, 'inner.img'))
    run('mkfs.ext4', '-q', join(outer, 'inner.img'))
    run('mount', '-o', 'loop', join(outer, 'inner.img'), inner)
    mounted.push(inner)
    mkdirSync(disk.dir)
  } catch (err) {
    disk.dispose()
    throw err
  }
  return disk
}
