import { defineConfig } from 'vitest/config'

/**
 * `npm run test:faults`: crash and fault injection against the system as real processes on
 * PostgreSQL (BENCH_DATABASE_URL / TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 * Kept apart from `npm test` (minutes, not seconds); FAULT_KILLS sets the kills per process (default 20).
 */
export default defineConfig({
  test: {
    include: ['tests/faults/**/*.faults.ts'],
    testTimeout: 900_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One scenario at a time: they kill processes and fill disks.
    fileParallelism: false,
    maxWorkers: 1
  }
})
