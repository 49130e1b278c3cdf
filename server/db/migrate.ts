import type { Database } from './database.js'
import { migrations } from './migrations.js'
import { ADVISORY_LOCKS } from './advisory-locks.js'

/** Applies the migrations not applied yet; returns the versions it applied. */
export async function migrate (db: Database): Promise<number[]> {
  // Long transactions: a migration on a large database, or the wait for another server's, may
  // rightly take longer than any query deadline.
  await db.transaction(async (tx) => {
    // Under the lock too: CREATE TABLE IF NOT EXISTS is not safe against itself, and two
    // servers starting together on a fresh database had one fail (a duplicate type name).
    if (db.engine === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.migrations])
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
  }, { long: true })
  const applied: number[] = []
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      // Servers starting together on one PostgreSQL must not both apply a migration.
      if (db.engine === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.migrations])
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version])
      if (rows.length > 0) return false
      for (const statement of splitStatements(migration.sql ?? '')) await tx.query(statement)
      await migration.apply?.(tx, { engine: db.engine })
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
      return true
    }, { long: true })
    if (done) applied.push(migration.version)
  }
  return applied
}

/** Splits a migration script on `;` at line ends; our scripts hold no procedural bodies. */
export function splitStatements (sql: string): string[] {
  return sql.split(/;\s*$/m).map((s) => s.replace(/^\s*--.*$/gm, '').trim()).filter(Boolean)
}
