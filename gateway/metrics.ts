/** The gateway's Prometheus metrics, one registry per gateway instance. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { processMetrics } from '../server/process-metrics.js'

export function createGatewayMetrics () {
  const registry = new Registry()
  const registers = [registry]
  /** Read at each scrape, for what nothing else updates while it matters (a write hanging). */
  const live = { outboxWriteWaitMs: () => 0, stateWriteWaitMs: () => 0, stateWritesWaiting: () => 0, acksUnconfirmed: () => 0, babblingHeldOff: () => 0 }
  return {
    registry,
    /** What `/metrics` shows: this gateway's metrics and the process's. */
    scrape: () => Registry.merge([registry, processMetrics('sos_gateway_process_')]).metrics(),
    live,
    connections: new Gauge({ name: 'sos_gateway_connections', help: 'Open authenticated MQTT connections', registers }),
    secretChecks: new Counter({ name: 'sos_gateway_secret_checks_total', help: 'Slow (scrypt) checks of a device secret at CONNECT, by result: match, mismatch, or busy (too many waiting: refused as server unavailable)', labelNames: ['result'], registers }),
    credentialLookups: new Counter({ name: 'sos_gateway_credential_lookups_total', help: 'Questions to the server about one device at CONNECT (unknown id, or a secret that may have been rotated), by result', labelNames: ['result'], registers }),
    connectionsRefused: new Counter({ name: 'sos_gateway_connections_refused_total', help: 'CONNECTs refused, by reason', labelNames: ['reason'], registers }),
    connectionsClosed: new Counter({ name: 'sos_gateway_connections_closed_total', help: 'Connections the gateway closed itself, by reason', labelNames: ['reason'], registers }),
    babblingShutdowns: new Counter({ name: 'sos_gateway_babbling_shutdowns_total', help: 'Connections shut down for babbling: BABBLING_REFUSALS refused publishes within 10 s, closed and their client id refused at CONNECT for a hold-off (5 s, doubling while it babbles on, up to BABBLING_HOLD_OFF_S)', registers }),
    babblingHeldOff: new Gauge({ name: 'sos_gateway_babbling_held_off', help: 'Client ids shut down for babbling and refused at CONNECT now (a device among them is reported offline by supervision)', registers, collect () { this.set(live.babblingHeldOff()) } }),
    eventsIn: new Counter({ name: 'sos_gateway_events_in_total', help: 'PUBLISHes received from devices', registers }),
    eventsAccepted: new Counter({ name: 'sos_gateway_events_accepted_total', help: 'Events durably written to the outbox, by type', labelNames: ['type'], registers }),
    eventsRejected: new Counter({ name: 'sos_gateway_events_rejected_total', help: 'Publishes rejected (dead-lettered or denied), by reason', labelNames: ['reason'], registers }),
    deadLettersHeldBack: new Counter({ name: 'sos_gateway_dead_letters_held_back_total', help: 'Dead letters (refused publishes, answered and counted all the same, and events kept without telemetry they could not read) not kept whole, past their device\'s budget (DEAD_LETTERS_PER_MINUTE); each device\'s are told in one summary dead letter at the window\'s end', registers }),
    telemetryDropped: new Counter({ name: 'sos_gateway_telemetry_dropped_total', help: 'Telemetry fields (ts, battery, rssi, fw) that could not be read and were left out of an event that was kept, by field', labelNames: ['field'], registers }),
    eventsShed: new Counter({ name: 'sos_gateway_events_shed_total', help: 'Valid events acknowledged but not kept (rate limit, full outbox), by type and reason', labelNames: ['type', 'reason'], registers }),
    storeFailures: new Counter({ name: 'sos_gateway_store_failures_total', help: 'Outbox writes that failed (no PUBACK sent)', registers }),
    outboxDepth: new Gauge({ name: 'sos_gateway_outbox_depth', help: 'Events waiting for server confirmation', registers }),
    outboxOldestAge: new Gauge({ name: 'sos_gateway_outbox_oldest_age_seconds', help: 'Age of the oldest event waiting for server confirmation', registers }),
    outboxFull: new Gauge({ name: 'sos_gateway_outbox_full', help: '1 while the outbox is at its bound (routine events are being shed)', registers }),
    outboxEvicted: new Counter({ name: 'sos_gateway_outbox_evicted_total', help: 'Stored heartbeats evicted to make room in a full outbox', registers }),
    alarmsSentUnwritten: new Counter({ name: 'sos_gateway_alarms_sent_unwritten_total', help: 'Alarms sent to the server from memory because their outbox write took too long (a disk that hangs); each PUBACKed once the server stored it', registers }),
    outboxWriteWait: new Gauge({ name: 'sos_gateway_outbox_write_wait_seconds', help: 'How long the outbox write in flight has waited for the disk (0 when none): seconds here mean the disk hangs', registers, collect () { this.set(live.outboxWriteWaitMs() / 1000) } }),
    stateWriteWait: new Gauge({ name: 'sos_gateway_state_write_wait_seconds', help: 'How long writes to the state database (presence, dead letters, credentials) have waited without one committing (0 when none wait): seconds here mean the disk hangs', registers, collect () { this.set(live.stateWriteWaitMs() / 1000) } }),
    stateWritesWaiting: new Gauge({ name: 'sos_gateway_state_writes_waiting', help: 'Writes to the state database queued for its writer thread', registers, collect () { this.set(live.stateWritesWaiting()) } }),
    stateWritesShed: new Counter({ name: 'sos_gateway_state_writes_shed_total', help: 'Dead letters not written to the state database because its writer was too far behind (a disk that hangs); still forwarded from memory', registers }),
    presenceDropped: new Counter({ name: 'sos_gateway_presence_dropped_total', help: 'Presence changes waiting for the server dropped past the bound (superseded ones of the same device first)', registers }),
    outboxCommit: new Histogram({ name: 'sos_gateway_outbox_commit_seconds', help: 'One outbox transaction (insert and fsync) in its worker thread: the disk\'s share of PUBACK latency', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers }),
    pubackLatency: new Histogram({ name: 'sos_gateway_puback_latency_seconds', help: 'Receive → durable write (PUBACK) latency', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers }),
    forwardLatency: new Histogram({ name: 'sos_gateway_forward_latency_seconds', help: 'Receive → confirmed by server latency', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30], registers }),
    forwardFailures: new Counter({ name: 'sos_gateway_forward_failures_total', help: 'Failed batch deliveries to the server', registers }),
    forwardRefused: new Counter({ name: 'sos_gateway_forward_refused_total', help: 'Presence changes and dead letters the server refused as malformed (400), let go one by one, by kind', labelNames: ['kind'], registers }),
    serverAuthRefused: new Gauge({ name: 'sos_gateway_server_auth_refused', help: '1 while the server refuses this gateway\'s credentials (401/403: GATEWAY_TOKEN wrong or revoked): events are kept in the outbox, nothing reaches the server', registers }),
    serverAuthRefusals: new Counter({ name: 'sos_gateway_server_auth_refusals_total', help: 'Requests to the server (ingest, credentials, downlink) refused for this gateway\'s credentials, by status (401, 403)', labelNames: ['status'], registers }),
    forwarded: new Counter({ name: 'sos_gateway_forwarded_total', help: 'Items confirmed by the server, by kind (event, presence, dead_letter)', labelNames: ['kind'], registers }),
    presenceChanges: new Counter({ name: 'sos_gateway_presence_changes_total', help: 'Device presence changes, by state and reason', labelNames: ['state', 'reason'], registers }),
    devicesOnline: new Gauge({ name: 'sos_gateway_devices_online', help: 'Supervised devices currently online', registers }),
    devicesOffline: new Gauge({ name: 'sos_gateway_devices_offline', help: 'Supervised devices currently offline', registers }),
    acksUnconfirmed: new Gauge({ name: 'sos_gateway_acks_unconfirmed', help: 'Alert states sent to devices that their own connection has not acknowledged yet (away, or at another gateway); each is sent again when its device is back', registers, collect () { this.set(live.acksUnconfirmed()) } }),
    acksReplayed: new Counter({ name: 'sos_gateway_acks_replayed_total', help: 'Alert states sent again to a device back on its connection, having not acknowledged them before', registers }),
    downlinkPublished: new Counter({ name: 'sos_gateway_downlink_published_total', help: 'Messages published to devices, by kind', labelNames: ['kind'], registers })
  }
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>
