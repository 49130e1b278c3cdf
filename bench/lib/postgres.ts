/** A throwaway PostgreSQL database for one benchmark or fault run, created and dropped here. */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const adminDatabaseUrl = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres'

export interface ScratchDatabase {
  url: string
  name: string
  /** A small pool for the harness's own counting queries. */
  pool: pg.Pool
  drop(): Promise<void>
}

export async function createScratchDatabase (prefix: string, adminUrl = adminDatabaseUrl): Promise<ScratchDatabase> {
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2, application_name: 'sos-harness' })
  pool.on('error', () => {})
  return {
    url: url.toString(),
    name,
    pool,
    async drop () {
      await pool.end().catch(() => {})
      const c = new pg.Client({ connectionString: adminUrl })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    }
  }
}

/** Cuts every connection the server holds to this database, as a failover or a DBA would. */
export async function terminateBackends (databaseName: string): Promise<number> {
  const admin = new pg.Client({ connectionString: adminDatabaseUrl })
  await admin.connect()
  try {
    const { rows } = await admin.query(
      'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2',
      [databaseName, 'sos-harness'])
    return Number(rows[0].n)
  } finally {
    await admin.end()
  }
}
