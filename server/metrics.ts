/**
 * The server's Prometheus metrics (`GET /metrics`). One registry per app, so tests that build
 * several apps in one process do not share counters.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { processMetrics } from './process-metrics.js'
import type { Queryable } from './db/database.js'

export class ServerMetrics {
  readonly registry = new Registry()

  readonly ingestedEvents = new Counter({
    name: 'sos_ingest_events_total', help: 'Events received from gateways, by type and status (stored, duplicate, refused: the database would not take it; kept as a dead letter)',
    labelNames: ['type', 'status'] as const, registers: [this.registry]
  })

  readonly ingestRefused = new Counter({
    name: 'sos_ingest_side_items_refused_total', help: 'Presence changes (kept as dead letters) and dead letters (dropped) the database would not take',
    labelNames: ['kind'] as const, registers: [this.registry]
  })

  readonly eventIdsReused = new Counter({
    name: 'sos_ingest_event_ids_reused_total', help: 'Events whose id (device, boot, seq) an earlier, different event already holds (a board reset or replaced without a new boot), stored under a new id rather than answered duplicate, by type',
    labelNames: ['type'] as const, registers: [this.registry]
  })

  readonly ingestStatementsCancelled = new Counter({
    name: 'sos_ingest_statements_cancelled_total', help: 'Ingest statements cancelled at the statement timeout (or by an administrator), by what followed: split (stored again in parts) or failed (the request failed; the gateway sends it again)',
    labelNames: ['then'] as const, registers: [this.registry]
  })

  readonly ingestBatchSeconds = new Histogram({
    name: 'sos_ingest_batch_seconds', help: 'Time to store one ingest batch',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry]
  })

  readonly alertsOpened = new Counter({
    name: 'sos_alerts_opened_total', help: 'Alerts opened, by kind', labelNames: ['kind'] as const, registers: [this.registry]
  })

  readonly alertTransitions = new Counter({
    name: 'sos_alert_transitions_total', help: 'Alert state changes, by new state', labelNames: ['state'] as const, registers: [this.registry]
  })

  readonly escalations = new Counter({
    name: 'sos_alert_escalations_total', help: 'Escalations of unacknowledged panic alerts', registers: [this.registry]
  })

  readonly webhookDeliveries = new Counter({
    name: 'sos_webhook_deliveries_total', help: 'Outbound webhook attempts, by result (delivered, retried, failed)',
    labelNames: ['result'] as const, registers: [this.registry]
  })

  readonly deadLetters = new Counter({
    name: 'sos_dead_letters_total', help: 'Refused device publishes reported by gateways and stored', labelNames: ['gateway'] as const, registers: [this.registry]
  })

  readonly cancels = new Counter({
    name: 'sos_cancel_attempts_total', help: 'Device cancels, by result (cancelled, wrong_pin, window_closed, no_alert, no_pin; stale: the device pressed again after it; early: the right PIN, no alert yet; the alert of its press, should that come, is then cancelled and counted in sos_alert_transitions_total)',
    labelNames: ['result'] as const, registers: [this.registry]
  })

  readonly reportsFiled = new Counter({
    name: 'sos_reports_filed_total', help: 'Resident reports filed from kiosks', registers: [this.registry]
  })

  readonly presenceChanges = new Counter({
    name: 'sos_presence_changes_total', help: 'Device presence changes applied, by state', labelNames: ['state'] as const, registers: [this.registry]
  })

  readonly loopPasses = new Counter({
    name: 'sos_loop_passes_total', help: 'Passes of the background loops (escalator, webhooks, gateway_watch), by result: ok; failed (an error, logged); abandoned (not settled within its deadline, a database connection that stopped answering say: the next pass runs without it)',
    labelNames: ['loop', 'result'] as const, registers: [this.registry]
  })

  // A time rather than an age: it stays right between scrapes and alerts on `time() - …` (absent
  // until the first pass completes).
  readonly loopLastPass = new Gauge({
    name: 'sos_loop_last_pass_timestamp_seconds', help: 'When each background loop (escalator, webhooks, gateway_watch) last completed a pass, in Unix seconds: a loop whose passes stopped (time() minus this growing past a minute for the escalator) lets unacknowledged alarms go unescalated',
    labelNames: ['loop'] as const, registers: [this.registry]
  })

  /** What `/metrics` shows: this app's metrics and the process's. */
  readonly scrape = {
    contentType: this.registry.contentType,
    metrics: () => Registry.merge([this.registry, processMetrics()]).metrics()
  }

  constructor (db: Queryable) {
    // Read at scrape time, so it is right whichever server instance changed the alerts.
    const activeAlerts = new Gauge({
      name: 'sos_alerts_active', help: 'Alerts not yet resolved or cancelled, by kind and state',
      labelNames: ['kind', 'state'] as const,
      registers: [this.registry],
      async collect () {
        const rows = await db.query<{ kind: string, state: string, n: number }>(
          "SELECT kind, state, count(*)::int8 AS n FROM alerts WHERE state IN ('open', 'acknowledged', 'dispatched') GROUP BY kind, state")
        this.reset()
        for (const r of rows) this.set({ kind: r.kind, state: r.state }, r.n)
      }
    })
    void activeAlerts
    const waitingWebhooks = new Gauge({
      name: 'sos_webhook_deliveries_waiting', help: 'Webhook deliveries queued and not yet taken by their receiver (nor given up)',
      registers: [this.registry],
      async collect () {
        // Within a day: older ones are given up by a sending instance (or wait for none, webhooks off).
        const [row] = await db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM webhook_deliveries WHERE delivered_at IS NULL AND given_up_at IS NULL AND created_at > now() - INTERVAL '1 day'")
        this.set(row?.n ?? 0)
      }
    })
    void waitingWebhooks
  }
}
