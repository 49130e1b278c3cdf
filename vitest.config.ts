import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    // Generous: starting embedded PostgreSQL (PGlite) and stopping a system take seconds, more
    // on a busy 2-core machine; a slow hook is not a failed test.
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores here: files run two at a time, each with its own broker, server and database.
    maxWorkers: 2
  }
})
