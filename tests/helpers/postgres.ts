/**
 * A fresh PostgreSQL database per test file, on the server that TEST_DATABASE_URL points at
 * (CI sets it; locally, unset = PostgreSQL tests are skipped and the embedded store is used).
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined

export async function createTestDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  if (!testDatabaseUrl) throw new Error('TEST_DATABASE_URL is not set')
  const name = `sos_test_${Date.now()}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: testDatabaseUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(testDatabaseUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop () {
      const c = new pg.Client({ connectionString: testDatabaseUrl })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    }
  }
}

/** The storage back-ends every storage-facing suite runs on. */
export const storageBackends: Array<{ name: string, databaseUrl: () => Promise<{ url?: string, drop: () => Promise<void> }> }> = [
  { name: 'embedded PGlite', databaseUrl: async () => ({ url: undefined, drop: async () => {} }) },
  ...(testDatabaseUrl ? [{ name: 'PostgreSQL', databaseUrl: createTestDatabase }] : [])
]
