import { backoffDelay, sleep } from '@intellisite/common'
import type { DetectionDocument, DetectionsRepository, InsertResult } from '@intellisite/detections-store'
import type { Logger } from 'pino'
import type { IndexerMetrics } from '../metrics.js'
import { IndexerStoppingError } from './batch-errors.js'
import { type BatchSession, throwGroupError } from './batch-session.js'

export interface StoreWriterOptions {
  repository: Pick<DetectionsRepository, 'ensureIndexes' | 'insertBatch'>
  retry: { initialMs: number; maxMs: number }
  metrics: Pick<IndexerMetrics, 'startStoreWrite' | 'storeRetried'>
  logger: Logger
  /** Aborted when the indexer stops: a retry wait ends at once. */
  stopSignal: AbortSignal
}

/**
 * The indexer's side of the detections store: a store that is starting, down or restarting
 * pauses the indexer (with growing waits), it never makes it skip or crash.
 */
export function createStoreWriter(options: StoreWriterOptions) {
  const { repository, retry, metrics, logger, stopSignal } = options
  const delay = (attempt: number) => backoffDelay(attempt, retry.initialMs, retry.maxMs)

  /** Creates the store's schema and indexes, waiting for the store rather than crash-looping. */
  async function ensureSchema(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await repository.ensureIndexes()
      } catch (err) {
        if (stopSignal.aborted) throw err
        const wait = delay(attempt)
        logger.warn({ err, attempt, delay: wait }, 'cannot create store indexes yet, retrying')
        await sleep(wait, stopSignal)
      }
    }
  }

  /**
   * Writes a batch until the store accepts it: an outage pauses the partition, it never skips
   * it. Between attempts the group session is kept alive; a stop ends the wait with
   * {@link IndexerStoppingError}, and a group error a heartbeat saw ends it with that error, as
   * the delivery does (either way the batch stays uncommitted and is redelivered).
   */
  async function write(
    documents: readonly DetectionDocument[],
    partition: number,
    session: BatchSession,
  ): Promise<InsertResult> {
    for (let attempt = 1; ; attempt++) {
      const endTimer = metrics.startStoreWrite()
      try {
        const result = await repository.insertBatch(documents)
        endTimer()
        if (attempt > 1) logger.info({ partition, attempt }, 'store write succeeded after retries')
        return result
      } catch (err) {
        if (stopSignal.aborted || !session.isRunning()) throw new IndexerStoppingError()
        metrics.storeRetried()
        const wait = delay(attempt)
        logger.warn({ err, partition, attempt, delay: wait }, 'store write failed, retrying')
        // A member the group has moved on from must rejoin, not keep writing for a partition
        // another member may own by now.
        await session.heartbeat()
        throwGroupError(session)
        await sleep(wait, stopSignal)
        throwGroupError(session)
      }
    }
  }

  return { ensureSchema, write }
}

export type StoreWriter = ReturnType<typeof createStoreWriter>
