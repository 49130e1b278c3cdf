/**
 * What the gateway's `/readyz` means: events a device sends here reach the server without
 * anyone having to step in. So it is not ready while stopping, nor while the server refuses its
 * credentials (server-auth.ts).
 *
 * Why the refusal counts and an unreachable server does not: a server restarting, a link down,
 * a 5xx are passing faults the forwarder rides out by itself, and the outbox is there for them;
 * were every gateway unready then, a load balancer would drop them all at once for a server
 * restart. A refused token never heals by itself: each press is PUBACKed, then waits for a
 * person to fix GATEWAY_TOKEN. Unready, a load balancer sends devices to a gateway whose
 * presses do reach the server, and whoever watches readiness is told at once. Liveness
 * (`/healthz`, always 200) is untouched on purpose: restarting the gateway would not fix its
 * token, and it keeps accepting and durably buffering events meanwhile, to be sent once the
 * token is accepted. (A ward with a single gateway behind a readiness-gated balancer would lose
 * its devices' connections instead: gate such a one on the MQTT port, as docker-compose.yml does.)
 */
import type { CredentialRefusal } from './server-auth.js'

export function readiness (stopping: boolean, refusal: CredentialRefusal | null): { ready: boolean, reason?: string } {
  if (stopping) return { ready: false, reason: 'stopping' }
  if (refusal) {
    return {
      ready: false,
      reason: `the server refuses this gateway's credentials (${refusal.status} to ${refusal.request} since ${refusal.since}): fix GATEWAY_TOKEN; events are kept in the outbox meanwhile`
    }
  }
  return { ready: true }
}
