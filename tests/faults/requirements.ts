/**
 * What the fault suite needs from the machine: a PostgreSQL it may create databases on, and
 * root for the tmpfs that the disk-full scenario fills. `npm test` runs a short pass of the
 * suite; on a developer's machine without them the scenarios that need them are skipped with
 * a line saying why. Under CI nothing is skipped: a missing requirement fails the run, so the
 * no-loss proof cannot silently drop out of it.
 */
import pg from 'pg'
import { adminDatabaseUrl } from '../../bench/lib/postgres.js'

async function postgresAnswers (url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return undefined
  } catch (err) {
    return `PostgreSQL at ${new URL(url).host} does not answer (${(err as Error).message}); set TEST_DATABASE_URL`
  } finally {
    await client.end().catch(() => {})
  }
}

/** Why the scenarios cannot run here at all, or undefined when they can. */
export const noPostgres = await postgresAnswers(adminDatabaseUrl)

/** Why the disk-full scenario cannot run here, or undefined when it can. */
export const noMount = process.getuid?.() === 0 ? undefined : 'mounting the small tmpfs that fills up needs root'

/** True when `what` may run; otherwise says why it is skipped, or fails under CI. */
export function required (what: string, missing: string | undefined): boolean {
  if (!missing) return true
  if (process.env.CI) throw new Error(`${what} cannot run under CI: ${missing}`)
  console.warn(`${what} is skipped here: ${missing}`)
  return false
}
