/**
 * The state database's checkpointer thread (started by `syncStateDb`, state-db.ts). Its own
 * connection copies the WAL back into gateway.sqlite and fsyncs, every `everyMs`, so the
 * fsync never runs on the broker's thread. Asked to stop, it closes its connection and ends.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Sqlite from 'better-sqlite3'

export interface CheckpointerData {
  file: string
  everyMs: number
}

const { file, everyMs } = workerData as CheckpointerData
const db = new Sqlite(file)
// NORMAL (like the main connection): a checkpoint syncs the WAL before and the file after.
db.pragma('synchronous = NORMAL')

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch {
    // Busy or failing disk: the next tick tries again; writes report their own errors.
  }
}, everyMs)

parentPort!.once('message', () => {
  clearInterval(timer)
  db.close()
  parentPort!.close()
})
