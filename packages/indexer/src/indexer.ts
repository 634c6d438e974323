import {
  createSuspiciousRule,
  type DetectionDocument,
  type DetectionsRepository,
  type InsertResult,
} from '@intellisite/detections-store'
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { type ClassifiedBatch, chunkBySize, classifyRecords } from './classify-records.js'
import type { IndexerConfig } from './config.js'
import {
  createPartitionProducers,
  type PartitionProducer,
  type PartitionProducers,
} from './kafka/partition-producers.js'
import { ensureTopics, partitionCount } from './kafka/topics.js'
import type { IndexerMetrics } from './metrics.js'
import { backoffDelay, sleep } from './retry.js'

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

/** Dead letters go out in sends of at most this many value bytes (the broker's default limit is 1 MB). */
const DLQ_SEND_BYTES = 512 * 1024

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

  async function handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, resolveOffset, isRunning } = payload
    const { topic, partition } = batch
    // Stale: a seek on this partition is pending, its position is no longer this batch's.
    if (batch.isEmpty() || payload.isStale() || !producers || !consumer) return
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
      await publish(owner, classified, payload, group)
      deps.faults?.afterCommit?.()
      metrics.stored.inc(result.inserted)
      metrics.duplicates.inc(result.duplicates)
      metrics.alerts.inc(classified.alerts.length)
      for (const code of classified.deadLetterCodes) metrics.deadLettered.inc({ code })
      if (classified.deadLetters.length > 0) {
        logger.warn(
          {
            partition,
            count: classified.deadLetters.length,
            codes: [...new Set(classified.deadLetterCodes)],
          },
          'records dead-lettered',
        )
      }
    } finally {
      clearInterval(keepAlive)
    }
    resolveOffset(batch.lastOffset())
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
   * Alerts, dead letters and the consumed offset commit or abort together: a read_committed reader
   * sees each alert once, whatever crashes. The offset is committed only here, after the batch is
   * durably stored, so a crash before this point redelivers the batch into an idempotent store.
   */
  async function publish(
    owner: PartitionProducer,
    classified: ClassifiedBatch,
    { batch, heartbeat }: EachBatchPayload,
    group: GroupState,
  ) {
    const transaction = await owner.producer.transaction()
    try {
      if (classified.alerts.length > 0) {
        await transaction.send({ topic: config.topics.alerts, messages: classified.alerts })
      }
      for (const chunk of chunkBySize(classified.deadLetters, DLQ_SEND_BYTES)) {
        await transaction.send({ topic: config.topics.dlq, messages: chunk })
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
      logger.error({ err, partition: batch.partition }, 'transaction failed, the batch will be redelivered')
      await transaction.abort().catch(() => {})
      // A fresh producer fences this one and re-reads the committed offset, which also covers a
      // commit that succeeded on the broker but whose answer was lost.
      await producers?.release(batch.partition)
      // Fenced: another member owns the partition now, unless that member is itself the zombie.
      // If the group has moved on without us, surface kafkajs's own group error so it rejoins
      // instead of retrying this batch (which would fence the rightful owner for nothing).
      if (isFenced(err)) {
        await heartbeat().catch((e: unknown) => {
          group.error = e as Error
        })
        if (group.error) throw group.error
      }
      throw new TransactionFailedError(err)
    }
  }

  async function stop(): Promise<void> {
    if (stopping) return
    stopping = true
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

  return { start, stop, ready }
}

export type Indexer = ReturnType<typeof createIndexer>
