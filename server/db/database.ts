/**
 * One storage interface over two engines: embedded PGlite (no DATABASE_URL) and PostgreSQL /
 * TimescaleDB through `pg`. Both speak the same SQL, so the schema and every query exist once.
 */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>
}

export interface TransactionOptions {
  /**
   * Work that may rightly take long (migrations on a large database): on PostgreSQL, free of
   * the statement timeout and of the deadline after which a query is taken for one on a dead
   * connection (postgres.ts). Nothing else should need it.
   */
  long?: boolean
}

export interface Database extends Queryable {
  readonly engine: 'pglite' | 'postgres'
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>
  close(): Promise<void>
  /**
   * PostgreSQL only (several server instances share one): LISTEN on `channel` over a connection
   * of its own, reconnecting when it drops. `onListening` runs each time it listens again after
   * a drop, when notifications may have been missed meanwhile; `onTrouble` at each drop and
   * each failed attempt to listen again.
   */
  /**
   * PostgreSQL only: the same database through connections of its own, for the background loops
   * (escalation, webhooks, the gateway watch), which must never queue behind requests and ingest
   * for a connection. Without it (PGlite: one connection, in process), the database itself.
   */
  readonly loops?: Database
  listen?(channel: string, onNotification: (payload: string) => void, onListening: (afterDrop: boolean) => void, onTrouble: (err: Error) => void): Promise<{ close(): Promise<void> }>
}

export interface DatabaseOptions {
  /** PostgreSQL connection string; unset = embedded PGlite under `dataDir`. */
  databaseUrl?: string
  dataDir: string
}

export async function openDatabase (options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { openPostgres } = await import('./postgres.js')
    return openPostgres(options.databaseUrl)
  }
  const { openPglite } = await import('./pglite.js')
  return openPglite(options.dataDir)
}
