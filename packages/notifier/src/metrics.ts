import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { AttemptOutcome } from './webhook-sender.js'

export interface NotifierCounts {
  pending: number
  disabledEndpoints: number
}

export function createNotifierMetrics(registry: Registry) {
  const registers = [registry]
  let counts: () => Promise<NotifierCounts> = async () => ({ pending: 0, disabledEndpoints: 0 })
  let inFlight = () => 0

  const alertsConsumed = new Counter({
    name: 'notifier_alerts_consumed_total',
    help: 'Alerts read from the alerts topic (invalid ones included)',
    registers,
  })
  const alertsInvalid = new Counter({
    name: 'notifier_alerts_invalid_total',
    help: 'Records of the alerts topic that are not an alert (skipped)',
    registers,
  })
  const enqueued = new Counter({
    name: 'notifier_deliveries_enqueued_total',
    help: 'Deliveries made pending (one per endpoint and alert its owner may see)',
    registers,
  })
  const deliveries = new Counter({
    name: 'notifier_deliveries_total',
    help: 'Deliveries that ended: delivered (a 2xx) or failed (retries exhausted, or 410 Gone)',
    labelNames: ['outcome'] as const,
    registers,
  })
  const attempts = new Counter({
    name: 'notifier_attempts_total',
    help: 'Delivery attempts by outcome: success, http_error, gone, redirect, timeout, network_error, refused',
    labelNames: ['outcome'] as const,
    registers,
  })
  const attemptSeconds = new Histogram({
    name: 'notifier_attempt_duration_seconds',
    help: 'Duration of one delivery attempt, from the request to the end of the response (or the failure)',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
    registers,
  })
  const endpointsDisabledTotal = new Counter({
    name: 'notifier_endpoints_disabled_total',
    help: 'Endpoints this notifier disabled, by cause: gone (410) or failing',
    labelNames: ['cause'] as const,
    registers,
  })
  // Read from PostgreSQL when scraped: the figures of every notifier together, not of this one.
  // prom-client collects gauges side by side: both share one query per scrape.
  let sampled: { at: number; counts: Promise<NotifierCounts> } | undefined
  const sample = () => {
    if (!sampled || Date.now() - sampled.at > 1_000) sampled = { at: Date.now(), counts: counts() }
    return sampled.counts
  }
  new Gauge({
    name: 'notifier_deliveries_pending',
    help: 'Deliveries not yet delivered nor failed (all notifiers; from PostgreSQL)',
    registers,
    async collect() {
      // PostgreSQL down: /readyz says so; the gauge keeps its last value.
      await sample().then(
        (c) => this.set(c.pending),
        () => {},
      )
    },
  })
  new Gauge({
    name: 'notifier_endpoints_disabled',
    help: 'Endpoints disabled, by their owner or for failing (from PostgreSQL)',
    registers,
    async collect() {
      await sample().then(
        (c) => this.set(c.disabledEndpoints),
        () => {},
      )
    },
  })
  new Gauge({
    name: 'notifier_attempts_in_flight',
    help: 'Attempts this notifier has in flight',
    registers,
    collect() {
      this.set(inFlight())
    },
  })

  return {
    alertsConsumed,
    alertsInvalid,
    enqueued,
    deliveries,
    endpointsDisabledTotal,
    recordAttempt(outcome: AttemptOutcome, latencyMs: number): void {
      attempts.inc({ outcome })
      attemptSeconds.observe({ outcome }, latencyMs / 1000)
    },
    observe(sources: { counts: () => Promise<NotifierCounts>; inFlight: () => number }): void {
      counts = sources.counts
      inFlight = sources.inFlight
    },
  }
}

export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>
