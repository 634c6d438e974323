import type { HostResolver } from '@intellisite/webhooks'
import type { Kafka } from 'kafkajs'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { createAlertsIntake } from './alerts-intake.js'
import type { NotifierConfig } from './config.js'
import { createDeliveriesRepository } from './deliveries-repository.js'
import { createDeliveryWorker } from './delivery-worker.js'
import type { NotifierMetrics } from './metrics.js'
import { createWebhookSender } from './webhook-sender.js'

/**
 * Time to record an attempt's outcome after it ends, on top of the attempt's own timeout: a lease
 * that ends sooner could let another notifier send while this one records; one that ends later
 * delays the retry of deliveries a dead notifier held.
 */
const LEASE_MARGIN_MS = 10_000

export interface NotifierDependencies {
  kafka: Kafka
  /** The users database (webhook tables); owned by the caller, closed after `stop()`. */
  pool: Pool
  config: NotifierConfig
  logger: Logger
  metrics: NotifierMetrics
  /** Host name resolution for deliveries; DNS unless given. */
  resolve?: HostResolver
  onFatalError(err: unknown): void
}

/** The notifier: alerts in from Kafka, deliveries out to webhooks, both through PostgreSQL. */
export function createNotifier(deps: NotifierDependencies) {
  const { config, logger, metrics } = deps
  const repository = createDeliveriesRepository(deps.pool)
  const sender = createWebhookSender({
    allowPrivate: config.allowPrivate,
    timeouts: config.timeouts,
    maxResponseBytes: config.maxResponseBytes,
    ...(deps.resolve && { resolve: deps.resolve }),
  })
  const worker = createDeliveryWorker({
    repository,
    sender,
    retry: config.retry,
    disable: config.disable,
    concurrency: config.concurrency,
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: 2 * config.timeouts.totalMs + LEASE_MARGIN_MS,
    logger: logger.child({ component: 'delivery-worker' }),
    metrics,
  })
  const intake = createAlertsIntake({
    kafka: deps.kafka,
    topic: config.topic,
    groupId: config.groupId,
    fromBeginning: config.fromBeginning,
    sessionTimeoutMs: config.sessionTimeoutMs,
    repository,
    logger: logger.child({ component: 'alerts-intake' }),
    metrics,
    onEnqueued: worker.wake,
    onFatalError: deps.onFatalError,
  })
  metrics.observe({ counts: repository.counts, inFlight: worker.inFlight })

  return {
    repository,
    async start(): Promise<void> {
      worker.start()
      await intake.start()
    },
    /** Kafka consumer joined its group. */
    kafkaReady: intake.ready,
    /** PostgreSQL answers and holds the webhook tables. */
    postgresReady: () => repository.ping(),
    /** Intake first (no new deliveries), then the attempts in flight are finished and recorded. */
    async stop(): Promise<void> {
      await intake.stop()
      await worker.stop()
      sender.close()
    },
  }
}

export type Notifier = ReturnType<typeof createNotifier>
