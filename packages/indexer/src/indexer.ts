import { builtinRule, createRuleIndex } from '@intellisite/alert-rules'
import { ensureTopics } from '@intellisite/common'
import type { DetectionsRepository } from '@intellisite/detections-store'
import type { Admin, Consumer, Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { createBatchDelivery } from './batch/batch-delivery.js'
import { createBatchProcessor } from './batch/batch-processor.js'
import { createStoreWriter } from './batch/store-writer.js'
import type { IndexerConfig } from './config.js'
import { watchGroupMembership } from './kafka/group-membership.js'
import { createPartitionOwnership, type PartitionOwnership } from './kafka/partition-ownership.js'
import { createRulesFollower, type RulesFollower } from './kafka/rules-follower.js'
import type { IndexerMetrics } from './metrics.js'
import { createPartitionHealth } from './partition-health.js'

export { IndexerStoppingError, TransactionFailedError } from './batch/batch-errors.js'

export type IndexerSettings = Pick<
  IndexerConfig,
  | 'topics'
  | 'groupId'
  | 'suspiciousVehicle'
  | 'maxMessageBytes'
  | 'maxBytesPerPartition'
  | 'concurrency'
  | 'sessionTimeoutMs'
  | 'heartbeatIntervalMs'
  | 'transactionTimeoutMs'
  | 'storeRetry'
  | 'publishRetry'
  | 'stall'
  | 'produceMaxBatchBytes'
>

export interface IndexerDeps {
  kafka: Kafka
  /**
   * The client of the transactional producers, if they retry differently from the consumer and
   * the admin (default: `kafka`).
   */
  producerKafka?: Kafka
  repository: DetectionsRepository
  config: IndexerSettings
  logger: Logger
  metrics: IndexerMetrics
  /** Called when the consumer has crashed for good (kafkajs will not restart it). */
  onFatalError?: (err: Error) => void
}

/**
 * The consumer's life: topics, store schema, rules, group membership, readiness, stop. Which
 * partitions this member owns, with the committed offsets that prove it, lives in
 * `PartitionOwnership`; the path of one batch (classify, store, deliver), in `batch/`; the alert
 * rules, in the index the `RulesFollower` keeps up to date.
 */
export function createIndexer(deps: IndexerDeps) {
  const { kafka, repository, config, metrics } = deps
  const logger = deps.logger.child({ component: 'indexer' })
  // The built-in rule comes from the configuration, never from the changelog.
  const rules = createRuleIndex()
  rules.upsert(builtinRule(config.suspiciousVehicle))
  metrics.observeRules(() => ({ rules: rules.size, watchlistEntries: rules.entryCount }))
  const stopSignal = new AbortController()
  let admin: Admin | undefined
  let follower: RulesFollower | undefined
  let consumer: Consumer | undefined
  let ownership: PartitionOwnership | undefined
  const health = createPartitionHealth({
    topic: config.topics.detections,
    failureThreshold: config.stall.failures,
    stallAfterMs: config.stall.afterMs,
    logger,
  })
  metrics.observeStalls(health.stalled)
  const storeWriter = createStoreWriter({
    repository,
    retry: config.storeRetry,
    metrics,
    logger,
    stopSignal: stopSignal.signal,
  })
  let stallTimer: NodeJS.Timeout | undefined
  let membership: ReturnType<typeof watchGroupMembership> | undefined
  let stopping = false

  async function start(): Promise<void> {
    admin = kafka.admin()
    await admin.connect()
    const { topics } = config
    const [, alerts, dlq] = await ensureTopics(
      admin,
      [topics.detections, topics.alerts, topics.dlq].map((topic) => ({
        topic,
        numPartitions: topics.partitions,
        replicationFactor: topics.replicationFactor,
      })),
      logger,
    )
    if (!alerts?.partitions || !dlq?.partitions)
      throw new Error('the alerts or dead-letter topic has no partitions')
    // A stall by time must be logged even when nobody asks for readiness.
    stallTimer = setInterval(health.stalled, 1_000)
    stallTimer.unref()
    await storeWriter.ensureSchema()

    // No detection is classified before every rule known at start is in the index.
    follower = createRulesFollower({
      kafka,
      admin,
      topic: topics.rules,
      replicationFactor: topics.replicationFactor,
      groupPrefix: `${config.groupId}.rules`,
      index: rules,
      metrics,
      logger,
    })
    if (!(await follower.start()) || stopping) return

    ownership = createPartitionOwnership({
      kafka: deps.producerKafka ?? kafka,
      admin,
      groupId: config.groupId,
      topic: topics.detections,
      transactionTimeoutMs: config.transactionTimeoutMs,
      logger,
      seek: (partition, offset) =>
        consumer?.seek({ topic: topics.detections, partition, offset: String(offset) }),
    })
    const delivery = createBatchDelivery({
      admin,
      config,
      ownership,
      health,
      metrics,
      logger,
      stopSignal: stopSignal.signal,
    })
    await delivery.refreshLimits()
    const processor = createBatchProcessor({
      ownership,
      storeWriter,
      delivery,
      health,
      metrics,
      match: rules.match,
      settings: {
        maxMessageBytes: config.maxMessageBytes,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        alertsPartitions: alerts.partitions,
        dlqPartitions: dlq.partitions,
      },
      logger,
    })
    consumer = kafka.consumer({
      groupId: config.groupId,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: config.heartbeatIntervalMs,
      maxBytesPerPartition: config.maxBytesPerPartition,
      // Also bounds how long a graceful stop waits for an idle fetch to return.
      maxWaitTimeInMs: 1_000,
      // Only committed records of transactional producers; detections are plain records anyway.
      readUncommitted: false,
    })
    membership = watchGroupMembership({
      consumer,
      topic: topics.detections,
      sessionTimeoutMs: config.sessionTimeoutMs,
      logger,
      onAssigned: (assigned) => {
        ownership?.retain(assigned).catch((err: unknown) => logger.warn({ err }, 'releasing producers'))
        metrics.retainPartitions(topics.detections, assigned)
        health.retain(assigned)
      },
      onFatalError: (err) => {
        if (!stopping) deps.onFatalError?.(err)
      },
    })

    await consumer.connect()
    await consumer.subscribe({ topic: topics.detections, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      // Offsets are resolved by hand once the batch's transaction has committed.
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.concurrency,
      eachBatch: processor.handle,
    })
  }

  async function stop(): Promise<void> {
    if (stopping) return
    stopping = true
    clearInterval(stallTimer)
    // A batch waiting for the store gives up (uncommitted, redelivered later); any other in-flight
    // batch is finished by kafkajs (store, transaction, commit) before it leaves the group.
    stopSignal.abort()
    await consumer?.disconnect()
    await ownership?.closeAll()
    await follower?.stop()
    await admin?.disconnect()
    membership?.left()
  }

  /** In the consumer group, heard from the broker lately, and not stopping. */
  function ready(): boolean {
    return !stopping && (membership?.inGroup() ?? false)
  }

  return {
    start,
    stop,
    ready,
    stalled: health.stalled,
    /** Every rule on the changelog at start is applied (readiness: `rules`). */
    rulesLoaded: () => follower?.loaded() ?? false,
  }
}

export type Indexer = ReturnType<typeof createIndexer>
