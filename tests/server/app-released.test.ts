/**
 * A closed app lets go of itself and its database. prom-client's default collectors never stop
 * (a GC observer, an event-loop monitor), and collected into each app's registry they kept every
 * app, and its database through the scrape-time gauges, alive as long as the process: a test
 * worker running many files in turn held all of them. They are now collected once per process.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture } from './fixture.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

describe('a closed app', () => {
  it('is garbage, and its database with it, once scraped and closed', async () => {
    let database: WeakRef<object> | undefined
    await (async () => {
      const { db, dispose } = await databaseBackends[0]!.open()
      const fx = await buildFixture(db)
      expect((await fx.app.inject({ url: '/metrics' })).body).toMatch(/process_cpu_user_seconds_total/)
      database = new WeakRef(db)
      await fx.app.close()
      await dispose()
    })()
    await expect.poll(() => { gc(); return database!.deref() === undefined }, { timeout: 10_000, interval: 200 }).toBe(true)
  })
})
