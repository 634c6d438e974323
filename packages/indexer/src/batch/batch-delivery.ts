import { growingDelay, isKafkaError, retriableKafkaErrorType, sleep } from '@intellisite/common'
import kafkajs, { type Admin } from 'kafkajs'
import type { Logger } from 'pino'
import type { IndexerConfig } from '../config.js'
import type { OwnedBatch, PartitionOwner, PartitionOwnership } from '../kafka/partition-ownership.js'
import type { IndexerMetrics } from '../metrics.js'
import type { PartitionHealth } from '../partition-health.js'
import { IndexerStoppingError, TransactionFailedError } from './batch-errors.js'
import { type BatchSession, throwGroupError } from './batch-session.js'
import type { ClassifiedBatch } from './classify-records.js'
import { type DeliveryLimits, type DeliveryPlan, planDelivery } from './delivery-plan.js'

// kafkajs is CommonJS and Node's ESM loader does not detect this export by name.
const { ConfigResourceTypes } = kafkajs

/**
 * Kafka's own default `max.message.bytes` (1 MiB + record batch overhead), assumed when the topics'
 * limits cannot be read (e.g. no DescribeConfigs permission). Not the largest detection accepted.
 */
const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588

const isFenced = (err: unknown) => isKafkaError(err, 'INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED')

export interface BatchDeliveryOptions {
  admin: Admin
  config: Pick<IndexerConfig, 'topics' | 'groupId' | 'publishRetry' | 'produceMaxBatchBytes'>
  ownership: PartitionOwnership
  health: PartitionHealth
  metrics: Pick<IndexerMetrics, 'transactionAborted'>
  logger: Logger
  /** Aborted when the indexer stops: a retry wait ends at once. */
  stopSignal: AbortSignal
}

/**
 * Publishes a stored batch's alerts and dead letters and commits its offset, in one Kafka
 * transaction, in sends that fit the output topics' limits; retries it until it commits.
 */
export function createBatchDelivery(options: BatchDeliveryOptions) {
  const { admin, config, ownership, health, metrics, logger, stopSignal } = options
  let limits: DeliveryLimits = {
    alertsBatchBytes: KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    dlqBatchBytes: KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
  }

  /**
   * The largest record batch each output topic accepts, read from the topics (their
   * `max.message.bytes`, which defaults to the broker's `message.max.bytes`), optionally lowered
   * by a setting. Read at start and again whenever the broker says a request was too large.
   */
  async function refreshLimits(): Promise<void> {
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
      logger.warn(
        { err },
        `cannot read the topics' max.message.bytes; assuming ${KAFKA_DEFAULT_MAX_MESSAGE_BYTES}`,
      )
      read = new Map()
    }
    const limitOf = (topic: string) => {
      const topicLimit = read.get(topic)
      const known = topicLimit !== undefined && Number.isFinite(topicLimit) && topicLimit > 0
      return Math.min(
        known ? topicLimit : KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
        config.produceMaxBatchBytes ?? Infinity,
      )
    }
    const next = { alertsBatchBytes: limitOf(alerts), dlqBatchBytes: limitOf(dlq) }
    if (next.alertsBatchBytes !== limits.alertsBatchBytes || next.dlqBatchBytes !== limits.dlqBatchBytes) {
      logger.info(next, 'record batch limits of the output topics')
    }
    limits = next
  }

  /**
   * Alerts, dead letters and the consumed offset commit or abort together: a read_committed reader
   * sees each alert once, whatever crashes. The offset is committed only here, after the batch is
   * durably stored, so a crash before this point redelivers the batch into an idempotent store.
   */
  async function publish(owner: PartitionOwner, plan: DeliveryPlan, batch: OwnedBatch<{ offset: string }>) {
    const next = BigInt(batch.lastOffset()) + 1n
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
          { topic: batch.topic, partitions: [{ partition: batch.partition, offset: next.toString() }] },
        ],
      })
      await transaction.commit()
      ownership.committed(owner, next)
    } catch (err) {
      metrics.transactionAborted()
      await transaction.abort().catch(() => {})
      await ownership.release(batch.partition)
      throw err
    }
  }

  /**
   * Delivers until the transaction commits. A failing partition is retried here, with growing
   * delays, rather than by kafkajs: its retries end in a consumer restart that pauses every
   * partition and leaves the group, for a fault that a restart cannot fix. Returns null when a
   * lost answer hid a commit that did happen.
   */
  async function deliver(
    initialOwner: PartitionOwner,
    classified: ClassifiedBatch,
    records: readonly { offset: string }[],
    batch: OwnedBatch<{ offset: string }>,
    session: BatchSession,
  ): Promise<DeliveryPlan | null> {
    const { partition } = batch
    let owner = initialOwner
    for (let attempt = 1; ; attempt++) {
      try {
        const plan = planDelivery(classified, limits)
        await publish(owner, plan, batch)
        if (attempt > 1) logger.info({ partition, attempt }, 'batch transaction committed after retries')
        return plan
      } catch (err) {
        // Fenced: another member owns the partition now, unless that member is itself the zombie.
        // If the group has moved on without us, surface kafkajs's own group error so it rejoins
        // instead of retrying this batch (which would fence the rightful owner for nothing).
        if (isFenced(err)) await session.heartbeat()
        const stopped = () => stopSignal.aborted || !session.isRunning()
        throwGroupError(session)
        if (stopped()) throw new IndexerStoppingError()
        health.failed(partition, err)
        if (isKafkaError(err, 'MESSAGE_TOO_LARGE')) await refreshLimits()
        const delay = growingDelay(attempt, config.publishRetry.initialMs, config.publishRetry.maxMs)
        const retriable = retriableKafkaErrorType(err)
        // An expected, retried step (a broker still completing a previous producer's transaction)
        // is one line; anything else keeps its stack.
        const cause = retriable ? { error: retriable, reason: (err as Error).message } : { err }
        logger.warn({ ...cause, partition, attempt, delay }, 'batch transaction failed, retrying')
        await sleep(delay, stopSignal)
        if (stopped()) throw new IndexerStoppingError()
        throwGroupError(session)
        const next = await ownership.reacquire(partition, batch, records)
        if (next.outcome === 'all') {
          logger.info({ partition }, 'the failed attempt had committed after all')
          return null
        }
        // Part of the batch was committed by another owner meanwhile: kafkajs redelivers it, and
        // the ownership drops what that owner already did.
        if (next.outcome === 'part') throw new TransactionFailedError(err)
        owner = next.owner
      }
    }
  }

  return {
    refreshLimits,
    deliver,
    /** The record batch limits in force. */
    limits: () => limits,
  }
}

export type BatchDelivery = ReturnType<typeof createBatchDelivery>
