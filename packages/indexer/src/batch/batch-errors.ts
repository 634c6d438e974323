import { IntellisiteError } from '@intellisite/common'

/** Thrown by the store and the delivery alike: the batch gives up, uncommitted, and is redelivered. */
export class IndexerStoppingError extends IntellisiteError<'INDEXER_STOPPING'> {
  constructor() {
    super('INDEXER_STOPPING', 'indexer is stopping: batch left uncommitted, it will be redelivered')
  }
}

/**
 * Retriable on purpose: kafkajs then redelivers the batch, and restarts the consumer after its
 * retries, instead of stopping for good as it does on the producer's non-retriable errors.
 */
export class TransactionFailedError extends IntellisiteError<'TRANSACTION_FAILED'> {
  constructor(cause: unknown) {
    super('TRANSACTION_FAILED', `batch transaction aborted: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    })
  }
}
