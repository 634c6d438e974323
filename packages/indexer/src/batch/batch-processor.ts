import type { MatchableDetection, RuleMatches } from '@intellisite/alert-rules'
import { isKafkaError } from '@intellisite/common'
import type { EachBatchPayload } from 'kafkajs'
import type { Logger } from 'pino'
import type { PartitionOwnership } from '../kafka/partition-ownership.js'
import type { IndexerMetrics } from '../metrics.js'
import type { PartitionHealth } from '../partition-health.js'
import type { BatchDelivery } from './batch-delivery.js'
import { IndexerStoppingError } from './batch-errors.js'
import { createBatchSession, keepAlive } from './batch-session.js'
import { classifyRecords } from './classify-records.js'
import type { StoreWriter } from './store-writer.js'

/** Errors by which the group tells a member to rejoin: not a failure of the partition's batch. */
const GROUP_ERRORS = [
  'REBALANCE_IN_PROGRESS',
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'FENCED_INSTANCE_ID',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
]

export interface BatchProcessorOptions {
  ownership: Pick<PartitionOwnership, 'acquire' | 'claim'>
  storeWriter: Pick<StoreWriter, 'write'>
  delivery: BatchDelivery
  health: Pick<PartitionHealth, 'waiting' | 'failed' | 'committed'>
  metrics: Pick<IndexerMetrics, 'consumed' | 'batchCommitted' | 'recordProgress'>
  /** The rules as they are when a batch is classified (a rule index's `match`). */
  match: (detection: MatchableDetection) => RuleMatches | null
  settings: {
    maxMessageBytes: number
    heartbeatIntervalMs: number
    alertsPartitions: number
    dlqPartitions: number
  }
  logger: Logger
}

/**
 * The path of one batch, in order: claim it for this member, classify it (pure), store it, deliver
 * it (alerts, dead letters and offset in one transaction), then let kafkajs move on.
 */
export function createBatchProcessor(options: BatchProcessorOptions) {
  const { ownership, storeWriter, delivery, health, metrics, settings, logger } = options

  /** kafkajs's `eachBatch`. */
  async function handle(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    // Stale: a seek on this partition is pending, its position is no longer this batch's.
    if (batch.isEmpty() || payload.isStale()) return
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
    const { batch, resolveOffset, isRunning } = payload
    const { topic, partition } = batch
    const owner = await ownership.acquire(partition)
    const records = await ownership.claim(owner, batch)
    if (records === null) return

    metrics.consumed(records.length)
    // The rules as they are now: a rule applies to the detections classified after it reached this
    // indexer. A batch redelivered after a crash is classified again, possibly with newer rules.
    const classified = classifyRecords(records, {
      topic,
      partition,
      match: options.match,
      maxMessageBytes: settings.maxMessageBytes,
      alertsPartitions: settings.alertsPartitions,
      dlqPartitions: settings.dlqPartitions,
    })
    const session = createBatchSession(payload, (err) =>
      logger.debug({ err, partition }, 'heartbeat during batch'),
    )
    const stopKeepAlive = keepAlive(session, settings.heartbeatIntervalMs)
    try {
      const result = await storeWriter.write(classified.documents, partition, session)
      const plan = await delivery.deliver(owner, classified, records, batch, session)
      metrics.batchCommitted(result, plan)
      if (plan) {
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
      stopKeepAlive()
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

  return { handle }
}

export type BatchProcessor = ReturnType<typeof createBatchProcessor>
