/** The gateway's Prometheus metrics, one registry per gateway instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export function createGatewayMetrics () {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'sos_gateway_process_' })
  return {
    registry,
    connectionsRefused: new Counter({ name: 'sos_gateway_connections_refused_total', help: 'CONNECTs refused, by reason', labelNames: ['reason'], registers: [registry] }),
    eventsIn: new Counter({ name: 'sos_gateway_events_in_total', help: 'PUBLISHes received from devices', registers: [registry] }),
    eventsAccepted: new Counter({ name: 'sos_gateway_events_accepted_total', help: 'Events durably written to the outbox, by type', labelNames: ['type'], registers: [registry] }),
    eventsRejected: new Counter({ name: 'sos_gateway_events_rejected_total', help: 'Publishes rejected (dead-lettered or denied), by reason', labelNames: ['reason'], registers: [registry] }),
    outboxDepth: new Gauge({ name: 'sos_gateway_outbox_depth', help: 'Events waiting for server confirmation', registers: [registry] }),
    pubackLatency: new Histogram({ name: 'sos_gateway_puback_latency_seconds', help: 'Receive → durable write (PUBACK) latency', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: [registry] }),
    forwardLatency: new Histogram({ name: 'sos_gateway_forward_latency_seconds', help: 'Receive → confirmed by server latency', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30], registers: [registry] }),
    forwardFailures: new Counter({ name: 'sos_gateway_forward_failures_total', help: 'Failed batch deliveries to the server', registers: [registry] }),
    downlinkPublished: new Counter({ name: 'sos_gateway_downlink_published_total', help: 'Messages published to devices, by kind', labelNames: ['kind'], registers: [registry] })
  }
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>
