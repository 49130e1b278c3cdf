import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    // Generous: starting embedded PostgreSQL (PGlite) and stopping a system take seconds, more
    // on a busy 2-core machine; a slow hook is not a failed test.
    hookTimeout: 180_000,
    pool: 'forks',
    // Each worker keeps its modules from one file to the next: re-importing fastify, aedes and
    // PGlite per file cost most of the suite's import time (tests/server: 314 s isolated, 250 s
    // not; the whole suite 1 070 s, then 804 s). Every file starts and stops its own systems,
    // ports and databases; none relies on a fresh module.
    isolate: false,
    // Two cores here: files run two at a time, each with its own broker, server and database.
    maxWorkers: 2
  }
})
