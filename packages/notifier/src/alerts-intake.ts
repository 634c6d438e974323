import { ensureTopics, retry } from '@intellisite/common'
import { type Alert, alertSchema } from '@intellisite/detections-store'
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import type { DeliveriesRepository } from './deliveries-repository.js'
import type { NotifierMetrics } from './metrics.js'

export interface AlertsIntakeOptions {
  kafka: Kafka
  topic: { name: string; partitions: number; replicationFactor: number }
  groupId: string
  fromBeginning: boolean
  sessionTimeoutMs: number
  repository: Pick<DeliveriesRepository, 'enqueue'>
  logger: Logger
  metrics: NotifierMetrics
  /** Deliveries were enqueued: the worker may look at once. */
  onEnqueued(): void
  /** The consumer stopped for good (kafkajs gave up): the process should exit and be restarted. */
  onFatalError(err: unknown): void
}

/** A record's alert, or null when the record is not one (logged and skipped: it can never become one). */
export function parseAlertRecord(value: Buffer | null): Alert | null {
  if (value === null) return null
  try {
    const parsed = alertSchema.safeParse(JSON.parse(value.toString('utf8')))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

/**
 * Reads the alerts topic in the notifier's own consumer group, read_committed (alerts are written
 * in the indexer's transactions: an aborted one never becomes a delivery). A batch's deliveries
 * are made pending in PostgreSQL first, in one transaction, and only then is the batch's offset
 * committed: a crash in between redelivers the batch, and enqueueing it again changes nothing.
 */
export function createAlertsIntake(options: AlertsIntakeOptions) {
  const { kafka, topic, logger, metrics, repository } = options
  let consumer: Consumer | undefined
  let joined = false

  async function handleBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload) {
    const last = batch.messages.at(-1)
    if (last === undefined) return
    const alerts: Alert[] = []
    for (const message of batch.messages) {
      metrics.alertsConsumed.inc()
      const alert = parseAlertRecord(message.value)
      if (alert) alerts.push(alert)
      else {
        metrics.alertsInvalid.inc()
        logger.warn({ partition: batch.partition, offset: message.offset }, 'record is not an alert; skipped')
      }
    }
    // PostgreSQL away: wait for it, heartbeating so the group keeps this member; give up only when
    // the partition is no longer ours (its next owner enqueues the batch instead).
    const inserted = await retry(() => repository.enqueue(alerts), {
      initialMs: 200,
      maxMs: 10_000,
      retryable: () => isRunning() && !isStale(),
      onRetry: (err, attempt, delayMs) => {
        logger.warn(
          { err, partition: batch.partition, attempt, delayMs },
          'could not enqueue deliveries; retrying',
        )
        heartbeat().catch(() => {})
      },
    })
    metrics.enqueued.inc(inserted)
    if (inserted > 0) options.onEnqueued()
    resolveOffset(last.offset)
    await consumer!.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: String(Number(last.offset) + 1) },
    ])
  }

  return {
    async start(): Promise<void> {
      const admin = kafka.admin()
      await admin.connect()
      try {
        // The notifier may start before the indexer, which otherwise creates the topic.
        await ensureTopics(
          admin,
          [
            {
              topic: topic.name,
              numPartitions: topic.partitions,
              replicationFactor: topic.replicationFactor,
            },
          ],
          logger,
        )
      } finally {
        await admin.disconnect()
      }
      const c = kafka.consumer({
        groupId: options.groupId,
        allowAutoTopicCreation: false,
        readUncommitted: false,
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: Math.max(100, Math.floor(options.sessionTimeoutMs / 10)),
        retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5_000 },
      })
      consumer = c
      c.on(c.events.GROUP_JOIN, () => {
        joined = true
      })
      c.on(c.events.DISCONNECT, () => {
        joined = false
      })
      c.on(c.events.CRASH, ({ payload }) => {
        joined = false
        logger.error({ err: payload.error, restart: payload.restart }, 'alerts consumer crashed')
        if (!payload.restart) options.onFatalError(payload.error)
      })
      await c.connect()
      await c.subscribe({ topic: topic.name, fromBeginning: options.fromBeginning })
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: topic.partitions,
        eachBatch: handleBatch,
      })
    },
    ready(): boolean {
      return joined
    },
    async stop(): Promise<void> {
      joined = false
      await consumer?.disconnect()
    },
  }
}

export type AlertsIntake = ReturnType<typeof createAlertsIntake>
