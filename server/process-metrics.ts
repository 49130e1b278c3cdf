/**
 * The process's own metrics (CPU, memory, GC, event loop), collected once per process and per
 * name prefix, and merged into each `/metrics` (the server's and the gateway's, which under
 * `npm start` share a process). prom-client's collectors never stop (a GC observer and an
 * event-loop monitor keep their registry), so collected per app or gateway they kept every one
 * of them, and what its scrape-time gauges reach (a database, a broker), alive as long as the
 * process: a test worker running many files in turn held all of them.
 */
import { Registry, collectDefaultMetrics } from 'prom-client'

const registries = new Map<string, Registry>()

export function processMetrics (prefix = ''): Registry {
  let registry = registries.get(prefix)
  if (!registry) {
    registry = new Registry()
    collectDefaultMetrics({ register: registry, prefix })
    registries.set(prefix, registry)
  }
  return registry
}
