import { builtinRule, createRuleIndex } from '@intellisite/alert-rules'
import { ensureTopics, isKafkaError } from '@intellisite/common'
import type { DetectionsRepository } from '@intellisite/detections-store'
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { classifyRecords } from './classify-records.js'
import type { IndexerConfig } from './config.js'
import { type BatchDelivery, createBatchDelivery, IndexerStoppingError } from './kafka/batch-delivery.js'
import { watchGroupMembership } from './kafka/group-membership.js'
import { createPartitionOwnership, type PartitionOwnership } from './kafka/partition-ownership.js'
import { createRulesFollower, type RulesFollower } from './kafka/rules-follower.js'
import type { IndexerMetrics } from './metrics.js'
import { createPartitionHealth } from './partition-health.js'
import { createStoreWriter } from './store-writer.js'

export { IndexerStoppingError, TransactionFailedError } from './kafka/batch-delivery.js'

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

/** Errors by which the group tells a member to rejoin: not a failure of the partition's batch. */
const GROUP_ERRORS = [
  'REBALANCE_IN_PROGRESS',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'FENCED_INSTANCE_ID',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
]

/**
 * The consumer's life (topics, store schema, rules, group membership, readiness) and the path of
 * one batch: classify, store, deliver. Which partitions this member owns, with the committed
 * offsets that prove it, lives in `PartitionOwnership`; the transaction that publishes a batch, in
 * `BatchDelivery`; the alert rules, in the index the `RulesFollower` keeps up to date.
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
  let delivery: BatchDelivery | undefined
  let alertsPartitions = 1
  let dlqPartitions = 1
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
    alertsPartitions = alerts.partitions
    dlqPartitions = dlq.partitions
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
    delivery = createBatchDelivery({
      admin,
      config,
      ownership,
      health,
      metrics,
      logger,
      stopSignal: stopSignal.signal,
    })
    await delivery.refreshLimits()
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
      eachBatch: handleBatch,
    })
  }

  async function handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    // Stale: a seek on this partition is pending, its position is no longer this batch's.
    if (batch.isEmpty() || payload.isStale() || !ownership || !delivery) return
    health.waiting(batch.partition)
    try {
      await processBatch(payload)
    } catch (err) {
      if (!(err instanceof IndexerStoppingError) && !isKafkaError(err, ...GROUP_ERRORS)) {
        health.failed(batch.partition, err)
      }
      throw err
    }
  }

  async function processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning } = payload
    const { topic, partition } = batch
    if (!ownership || !delivery) return
    const owner = await ownership.acquire(partition)
    const records = await ownership.claim(owner, batch)
    if (records === null) return

    metrics.consumed.inc(records.length)
    // The rules as they are now: a rule applies to the detections classified after it reached this
    // indexer. A batch redelivered after a crash is classified again, possibly with newer rules.
    const classified = classifyRecords(records, {
      topic,
      partition,
      match: rules.match,
      maxMessageBytes: config.maxMessageBytes,
      alertsPartitions,
      dlqPartitions,
    })
    // A slow or retried bulk write must not cost the partition: keep the group session alive.
    let groupError: Error | undefined
    const session = {
      heartbeat: () =>
        heartbeat().catch((err: unknown) => {
          groupError = err as Error
          logger.debug({ err, partition }, 'heartbeat during batch')
        }),
      isRunning,
      groupError: () => groupError,
    }
    const keepAlive = setInterval(session.heartbeat, config.heartbeatIntervalMs)
    try {
      const result = await storeWriter.write(classified.documents, partition, payload)
      const plan = await delivery.deliver(owner, classified, records, batch, session)
      metrics.stored.inc(result.inserted)
      metrics.duplicates.inc(result.duplicates)
      if (plan) {
        metrics.alerts.inc(plan.alertCount)
        for (const code of plan.deadLetterCodes) metrics.deadLettered.inc({ code })
        if (plan.deadLetterCodes.length > 0) {
          logger.warn(
            { partition, count: plan.deadLetterCodes.length, codes: [...new Set(plan.deadLetterCodes)] },
            'records dead-lettered',
          )
        }
        if (plan.truncated > 0) {
          logger.error(
            { partition, count: plan.truncated, limit: delivery.limits().dlqBatchBytes },
            "dead letters over the dead-letter topic's max.message.bytes were sent without their value: raise it to the detections topic's",
          )
        }
      }
    } finally {
      clearInterval(keepAlive)
    }
    resolveOffset(batch.lastOffset())
    health.committed(partition)
    const last = batch.messages.at(-1)
    metrics.recordProgress(topic, partition, {
      lagMessages: Number(batch.offsetLag()),
      lastTimestamp: last ? Number(last.timestamp) : Date.now(),
    })
    if (!isRunning()) logger.info({ partition, lastOffset: batch.lastOffset() }, 'in-flight batch committed')
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
