import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface AlertsMetrics {
  connected: Gauge
  eventsSent: Counter
  dropped: Counter<'reason'>
  replays: Counter<'source'>
  consumerLag: Gauge
  windowEntries: Gauge
  flushSeconds: Histogram
}

export function createAlertsMetrics(
  registry: Registry,
  lag: () => number,
  connected: () => number,
  windowSize: () => number = () => 0,
) {
  const registers = [registry]
  const metrics: AlertsMetrics = {
    connected: new Gauge({
      name: 'alerts_sse_clients_connected',
      help: 'SSE clients currently connected to GET /alerts',
      registers,
      collect() {
        this.set(connected())
      },
    }),
    eventsSent: new Counter({
      name: 'alerts_sse_events_sent_total',
      help: 'Alert events written to SSE clients (live and replayed)',
      registers,
    }),
    dropped: new Counter({
      name: 'alerts_sse_clients_closed_total',
      help: 'SSE connections closed by the server, by reason (slow-client, lifetime, token-expired, shutdown, replay-failed)',
      labelNames: ['reason'],
      registers,
    }),
    replays: new Counter({
      name: 'alerts_sse_replays_total',
      help: 'Resumed streams by where the missed alerts came from (memory, kafka, none)',
      labelNames: ['source'],
      registers,
    }),
    flushSeconds: new Histogram({
      name: 'alerts_sse_flush_seconds',
      help: 'Duration of one fan-out sweep: every live client written what it lacks (one write each)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1],
      registers,
    }),
    // The replay window fills up to SSE_REPLAY_WINDOW entries and then stays there: memory that
    // grows with it is the window filling, not a leak.
    windowEntries: new Gauge({
      name: 'alerts_replay_window_entries',
      help: 'Recent alerts held in memory for resumes and de-duplication (at most SSE_REPLAY_WINDOW)',
      registers,
      collect() {
        this.set(windowSize())
      },
    }),
    consumerLag: new Gauge({
      name: 'alerts_consumer_lag',
      help: 'Alerts committed to the topic but not yet read by this process (sum over partitions)',
      registers,
      collect() {
        this.set(lag())
      },
    }),
  }
  return metrics
}
