import {
  createSuspiciousRule,
  type DetectionDocument,
  type DetectionsRepository,
  type InsertResult,
} from '@intellisite/detections-store'
import kafkajs, { type Admin, type Consumer, type EachBatchPayload, type Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import {
  type ClassifiedBatch,
  classifyRecords,
  type DeliveryLimits,
  type DeliveryPlan,
  planDelivery,
  type SourceRecord,
} from './classify-records.js'
import type { IndexerConfig } from './config.js'
import {
  createPartitionProducers,
  type PartitionProducer,
  type PartitionProducers,
} from './kafka/partition-producers.js'
import { ensureTopics, partitionCount } from './kafka/topics.js'
import type { IndexerMetrics } from './metrics.js'
import { createPartitionHealth, kafkaErrorType } from './partition-health.js'
import { backoffDelay, growingDelay, sleep } from './retry.js'

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
  repository: DetectionsRepository
  config: IndexerSettings
  logger: Logger
  metrics: IndexerMetrics
  /** Called when the consumer has crashed for good (kafkajs will not restart it). */
  onFatalError?: (err: Error) => void
  /** Fault injection for crash tests: called after a batch's bulk write and after its commit. */
  faults?: { afterStore?: () => void; afterCommit?: () => void }
}

export class IndexerStoppingError extends Error {
  readonly code = 'INDEXER_STOPPING'
  constructor() {
    super('indexer is stopping: batch left uncommitted, it will be redelivered')
  }
}

/** Used when the topics' own limits cannot be read (e.g. no DescribeConfigs permission): the broker's default. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
// kafkajs is CommonJS and Node's ESM loader does not detect this export by name.
const { ConfigResourceTypes } = kafkajs

/** Errors by which the group tells a member to rejoin: not a failure of the partition's batch. */
const GROUP_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'FENCED_INSTANCE_ID',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
])

/**
 * Retriable on purpose: kafkajs then redelivers the batch, and restarts the consumer after its
 * retries, instead of stopping for good as it does on the producer's non-retriable errors.
 */
export class TransactionFailedError extends Error {
  readonly code = 'TRANSACTION_FAILED'
  readonly retriable = true
  constructor(cause: unknown) {
    super(`batch transaction aborted: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

interface GroupState {
  /** The last consumer-group error seen by a heartbeat during the batch (e.g. UNKNOWN_MEMBER_ID). */
  error?: Error
}

function isFenced(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.type === 'INVALID_PRODUCER_EPOCH' || e.type === 'PRODUCER_FENCED') return true
  }
  return false
}

export function createIndexer(deps: IndexerDeps) {
  const { kafka, repository, config, metrics } = deps
  const logger = deps.logger.child({ component: 'indexer' })
  const rule = createSuspiciousRule(config.suspiciousVehicle)
  const stopSignal = new AbortController()
  let admin: Admin | undefined
  let consumer: Consumer | undefined
  let producers: PartitionProducers | undefined
  let alertsPartitions = 1
  let dlqPartitions = 1
  let limits: DeliveryLimits = {
    alertsBatchBytes: DEFAULT_MAX_MESSAGE_BYTES,
    dlqBatchBytes: DEFAULT_MAX_MESSAGE_BYTES,
  }
  const health = createPartitionHealth({
    topic: config.topics.detections,
    failureThreshold: config.stall.failures,
    stallAfterMs: config.stall.afterMs,
    logger,
  })
  metrics.observeStalls(health.stalled)
  let stallTimer: NodeJS.Timeout | undefined
  let joined = false
  /**
   * When the broker last answered the consumer (a heartbeat or a fetch, empty ones included). A
   * lost broker makes kafkajs retry for a long time before it crashes the consumer; readiness
   * must not wait for that.
   */
  let lastContact = 0
  let stopping = false

  async function start(): Promise<void> {
    admin = kafka.admin()
    await admin.connect()
    const { topics } = config
    await ensureTopics(
      admin,
      [topics.detections, topics.alerts, topics.dlq].map((topic) => ({
        topic,
        numPartitions: topics.partitions,
        replicationFactor: topics.replicationFactor,
      })),
      logger,
    )
    alertsPartitions = await partitionCount(admin, topics.alerts)
    dlqPartitions = await partitionCount(admin, topics.dlq)
    await refreshLimits()
    // A stall by time must be logged even when nobody asks for readiness.
    stallTimer = setInterval(health.stalled, 1_000)
    stallTimer.unref()
    // The store may still be starting (or down): wait for it rather than crash-loop.
    for (let attempt = 1; ; attempt++) {
      try {
        await repository.ensureIndexes()
        break
      } catch (err) {
        if (stopping) throw err
        const delay = backoffDelay(attempt, config.storeRetry.initialMs, config.storeRetry.maxMs)
        logger.warn({ err, attempt, delay }, 'cannot create store indexes yet, retrying')
        await sleep(delay, stopSignal.signal)
      }
    }

    producers = createPartitionProducers({
      kafka,
      admin,
      groupId: config.groupId,
      topic: topics.detections,
      transactionTimeoutMs: config.transactionTimeoutMs,
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
    const { GROUP_JOIN, CRASH, STOP, DISCONNECT, HEARTBEAT, FETCH } = consumer.events
    const contact = () => {
      lastContact = Date.now()
    }
    consumer.on(HEARTBEAT, contact)
    consumer.on(FETCH, contact)
    consumer.on(GROUP_JOIN, ({ payload }) => {
      joined = true
      contact()
      const assigned = new Set(payload.memberAssignment[topics.detections] ?? [])
      logger.info({ partitions: [...assigned] }, 'joined the consumer group')
      producers?.retain(assigned).catch((err: unknown) => logger.warn({ err }, 'releasing producers'))
      metrics.retainPartitions(topics.detections, assigned)
      health.retain(assigned)
    })
    consumer.on(CRASH, ({ payload }) => {
      joined = false
      logger.error({ err: payload.error, restart: payload.restart }, 'consumer crashed')
      if (!payload.restart && !stopping) deps.onFatalError?.(payload.error)
    })
    consumer.on(STOP, () => {
      joined = false
    })
    consumer.on(DISCONNECT, () => {
      joined = false
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

  /**
   * The largest record batch each output topic accepts, read from the topics (their
   * `max.message.bytes`, which defaults to the broker's `message.max.bytes`), optionally lowered
   * by a setting. Read at start and again whenever the broker says a request was too large.
   */
  async function refreshLimits(): Promise<void> {
    if (!admin) return
    const { alerts, dlq } = config.topics
    let read: Map<string, number>
    try {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [alerts, dlq].map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames: ['max.message.bytes'],
        })),
      })
      read = new Map(
        described.resources.map((r) => [
          r.resourceName,
          Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue),
        ]),
      )
    } catch (err) {
      logger.warn({ err }, `cannot read the topics' max.message.bytes; assuming ${DEFAULT_MAX_MESSAGE_BYTES}`)
      read = new Map()
    }
    const limitOf = (topic: string) => {
      const topicLimit = read.get(topic)
      const known = topicLimit !== undefined && Number.isFinite(topicLimit) && topicLimit > 0
      return Math.min(known ? topicLimit : DEFAULT_MAX_MESSAGE_BYTES, config.produceMaxBatchBytes ?? Infinity)
    }
    const next = { alertsBatchBytes: limitOf(alerts), dlqBatchBytes: limitOf(dlq) }
    if (next.alertsBatchBytes !== limits.alertsBatchBytes || next.dlqBatchBytes !== limits.dlqBatchBytes) {
      logger.info(next, 'record batch limits of the output topics')
    }
    limits = next
  }

  async function handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    // Stale: a seek on this partition is pending, its position is no longer this batch's.
    if (batch.isEmpty() || payload.isStale() || !producers || !consumer) return
    health.waiting(batch.partition)
    try {
      await processBatch(payload)
    } catch (err) {
      const type = kafkaErrorType(err)
      if (!(err instanceof IndexerStoppingError) && !(type && GROUP_ERRORS.has(type))) {
        health.failed(batch.partition, err)
      }
      throw err
    }
  }

  async function processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning } = payload
    const { topic, partition } = batch
    if (!producers) return
    const owner = await producers.acquire(partition)
    if (!(await positionStillValid(owner, payload))) return
    const records = skipCommitted(owner, payload)
    if (records === null) return

    metrics.consumed.inc(records.length)
    const classified = classifyRecords(records, {
      topic,
      partition,
      rule,
      maxMessageBytes: config.maxMessageBytes,
      alertsPartitions,
      dlqPartitions,
    })
    // A slow or retried bulk write must not cost the partition: keep the group session alive.
    const group: GroupState = {}
    const keepAlive = setInterval(() => {
      heartbeat().catch((err: unknown) => {
        group.error = err as Error
        logger.debug({ err, partition }, 'heartbeat during batch')
      })
    }, config.heartbeatIntervalMs)
    try {
      const result = await storeWithRetry(classified.documents, partition, payload)
      deps.faults?.afterStore?.()
      const plan = await deliverWithRetry(owner, classified, records, payload, group)
      deps.faults?.afterCommit?.()
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
            { partition, count: plan.truncated, limit: limits.dlqBatchBytes },
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

  /**
   * Kafka drops a group's offsets when the topic is deleted, but kafkajs keeps fetching from its
   * in-memory position: on a re-created topic that would silently skip the new records below it.
   * So the broker's committed offset is checked before each batch. It may lag our last commit
   * (EndTxn returns before the offset commit is materialised), but never the one before it: a
   * transactional id cannot start a transaction until its previous one is complete. Below that,
   * the offsets were dropped or reset; start again from the broker's (or the beginning).
   */
  async function positionStillValid(owner: PartitionProducer, { batch }: EachBatchPayload): Promise<boolean> {
    if (owner.previousCommitted < 0n || !admin || !consumer) return true
    const { topic, partition } = batch
    const offsets = await admin.fetchOffsets({ groupId: config.groupId, topics: [topic] })
    const committed = BigInt(offsets[0]?.partitions.find((p) => p.partition === partition)?.offset ?? '-1')
    if (committed >= owner.previousCommitted) return true
    let offset = committed
    if (offset < 0n) {
      const watermarks = await admin.fetchTopicOffsets(topic)
      offset = BigInt(watermarks.find((p) => p.partition === partition)?.low ?? '0')
    }
    logger.warn(
      {
        partition,
        committed: String(committed),
        expected: String(owner.lastCommitted),
        seek: String(offset),
      },
      'committed offset went back under this consumer (topic re-created or offsets reset): seeking',
    )
    owner.lastCommitted = -1n
    owner.previousCommitted = -1n
    consumer.seek({ topic, partition, offset: offset.toString() })
    return false
  }

  /**
   * A zombie may have committed this partition between our offset fetch and our fencing; the
   * committed offset read after fencing is the truth. Returns the records still to process, or
   * null when the whole batch was already committed (the consumer is moved past it).
   */
  function skipCommitted(owner: PartitionProducer, { batch }: EachBatchPayload) {
    const committed = owner.committedOffset
    if (committed < 0n) return batch.messages
    owner.committedOffset = -1n
    if (committed > BigInt(batch.lastOffset())) {
      logger.warn(
        { partition: batch.partition, committed: String(committed) },
        'batch already committed by a previous owner',
      )
      consumer?.seek({ topic: batch.topic, partition: batch.partition, offset: committed.toString() })
      return null
    }
    return batch.messages.filter((message) => BigInt(message.offset) >= committed)
  }

  /** Writes until the store accepts the batch: a store outage pauses the partition, it never skips it. */
  async function storeWithRetry(
    documents: readonly DetectionDocument[],
    partition: number,
    { heartbeat, isRunning }: EachBatchPayload,
  ): Promise<InsertResult> {
    for (let attempt = 1; ; attempt++) {
      const endTimer = metrics.bulkWriteSeconds.startTimer()
      try {
        const result = await repository.insertBatch(documents)
        endTimer()
        if (attempt > 1) logger.info({ partition, attempt }, 'store write succeeded after retries')
        return result
      } catch (err) {
        if (stopping || !isRunning()) throw new IndexerStoppingError()
        metrics.storeRetries.inc()
        const delay = backoffDelay(attempt, config.storeRetry.initialMs, config.storeRetry.maxMs)
        logger.warn({ err, partition, attempt, delay }, 'store write failed, retrying')
        await heartbeat().catch(() => {})
        await sleep(delay, stopSignal.signal)
      }
    }
  }

  /**
   * Publishes the batch's transaction until it commits. A failing partition is retried here, with
   * growing delays, rather than by kafkajs: its retries end in a consumer restart that pauses
   * every partition and leaves the group, for a fault that a restart cannot fix. Returns null
   * when a lost answer hid a commit that did happen (a fresh producer reads the committed offset).
   */
  async function deliverWithRetry(
    initialOwner: PartitionProducer,
    classified: ClassifiedBatch,
    records: readonly SourceRecord[],
    payload: EachBatchPayload,
    group: GroupState,
  ): Promise<DeliveryPlan | null> {
    const { batch, heartbeat, isRunning } = payload
    const { partition } = batch
    let owner = initialOwner
    for (let attempt = 1; ; attempt++) {
      try {
        const plan = planDelivery(classified, limits)
        await publish(owner, plan, payload)
        if (attempt > 1) logger.info({ partition, attempt }, 'batch transaction committed after retries')
        return plan
      } catch (err) {
        // Fenced: another member owns the partition now, unless that member is itself the zombie.
        // If the group has moved on without us, surface kafkajs's own group error so it rejoins
        // instead of retrying this batch (which would fence the rightful owner for nothing).
        if (isFenced(err)) await heartbeat().catch((e: unknown) => (group.error = e as Error))
        if (group.error) throw group.error
        if (stopping || !isRunning()) throw new IndexerStoppingError()
        health.failed(partition, err)
        if (kafkaErrorType(err) === 'MESSAGE_TOO_LARGE') await refreshLimits()
        const delay = growingDelay(attempt, config.publishRetry.initialMs, config.publishRetry.maxMs)
        logger.warn({ err, partition, attempt, delay }, 'batch transaction failed, retrying')
        await sleep(delay, stopSignal.signal)
        if (stopping || !isRunning()) throw new IndexerStoppingError()
        if (group.error) throw group.error
        owner = await producersOrThrow().acquire(partition)
        const committed = owner.committedOffset
        if (committed > BigInt(batch.lastOffset())) {
          owner.committedOffset = -1n
          logger.info(
            { partition, committed: String(committed) },
            'the failed attempt had committed after all',
          )
          owner.previousCommitted = owner.lastCommitted
          owner.lastCommitted = committed
          return null
        }
        // Part of the batch committed by another owner meanwhile: let kafkajs redeliver it, and
        // `skipCommitted` drop what that owner already did.
        if (committed > BigInt(records[0]?.offset ?? batch.lastOffset()))
          throw new TransactionFailedError(err)
        owner.committedOffset = -1n
      }
    }
  }

  function producersOrThrow(): PartitionProducers {
    if (!producers) throw new IndexerStoppingError()
    return producers
  }

  /**
   * Alerts, dead letters and the consumed offset commit or abort together: a read_committed reader
   * sees each alert once, whatever crashes. The offset is committed only here, after the batch is
   * durably stored, so a crash before this point redelivers the batch into an idempotent store.
   * Each send fits the topic's record batch limit, however many alerts the batch holds.
   */
  async function publish(owner: PartitionProducer, plan: DeliveryPlan, { batch }: EachBatchPayload) {
    const transaction = await owner.producer.transaction()
    try {
      for (const messages of plan.alertChunks) {
        await transaction.send({ topic: config.topics.alerts, messages })
      }
      for (const messages of plan.deadLetterChunks) {
        await transaction.send({ topic: config.topics.dlq, messages })
      }
      await transaction.sendOffsets({
        consumerGroupId: config.groupId,
        topics: [
          {
            topic: batch.topic,
            partitions: [
              { partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() },
            ],
          },
        ],
      })
      await transaction.commit()
      owner.previousCommitted = owner.lastCommitted
      owner.lastCommitted = BigInt(batch.lastOffset()) + 1n
    } catch (err) {
      metrics.transactionsAborted.inc()
      await transaction.abort().catch(() => {})
      // A fresh producer fences this one and re-reads the committed offset, which also covers a
      // commit that succeeded on the broker but whose answer was lost.
      await producers?.release(batch.partition)
      throw err
    }
  }

  async function stop(): Promise<void> {
    if (stopping) return
    stopping = true
    clearInterval(stallTimer)
    // A batch waiting for the store gives up (uncommitted, redelivered later); any other in-flight
    // batch is finished by kafkajs (store, transaction, commit) before it leaves the group.
    stopSignal.abort()
    await consumer?.disconnect()
    await producers?.closeAll()
    await admin?.disconnect()
    joined = false
  }

  /**
   * Joined the consumer group, heard from the broker within a session timeout (past it the group
   * would have dropped us anyway), and not stopping.
   */
  function ready(): boolean {
    return joined && !stopping && Date.now() - lastContact <= config.sessionTimeoutMs
  }

  return { start, stop, ready, stalled: health.stalled }
}

export type Indexer = ReturnType<typeof createIndexer>
