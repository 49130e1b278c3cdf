/**
 * A simulated clock for a simulated hour: the database's `now()` and JavaScript's `Date` both
 * read it, so an operator who "acknowledges 45 s after the press" is stored that way by the
 * real lifecycle code (which writes `acknowledged_at = now()`).
 *
 * How: a `public.now()` that returns the session setting `sim.now`, found before
 * `pg_catalog.now()` because `public` comes first on the search path. Column defaults were
 * bound to `pg_catalog.now()` when the migrations ran, so they are pointed at the clock too.
 * Install it after the migrations; the tables and their data are untouched otherwise.
 */
import { vi } from 'vitest'
import type { Database } from '../../../server/db/database.js'

export interface SimClock {
  /** Moves both clocks; only forwards, like real time. */
  set (at: Date): Promise<void>
  now (): Date
}

export async function installSimClock (db: Database, start: Date): Promise<SimClock> {
  await db.exec(`
    CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql STABLE
      AS $$ SELECT current_setting('sim.now')::timestamptz $$;
    SET sim.now = '${start.toISOString()}';
    SET search_path = public, pg_catalog;`)
  const defaults = await db.query<{ table_name: string, column_name: string }>(`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = 'public' AND column_default = 'now()'`)
  for (const c of defaults) {
    await db.exec(`ALTER TABLE "${c.table_name}" ALTER COLUMN "${c.column_name}" SET DEFAULT public.now()`)
  }
  vi.useFakeTimers({ toFake: ['Date'], now: start })
  let current = start
  return {
    async set (at) {
      if (at.getTime() < current.getTime()) throw new Error(`the simulated clock only moves forward (${at.toISOString()} < ${current.toISOString()})`)
      current = at
      vi.setSystemTime(at)
      await db.exec(`SET sim.now = '${at.toISOString()}'`)
    },
    now: () => current
  }
}
