import { kafkaErrorType } from '@intellisite/common'
import type { Logger } from 'pino'

export interface StalledPartition {
  topic: string
  partition: number
  /** `failing`: the same batch failed again and again; `no-progress`: nothing committed for too long while records wait. */
  reason: 'failing' | 'no-progress'
  /** Failed attempts in a row at the batch in hand. */
  failures: number
  /** Since when the partition has records waiting and nothing committed. */
  waitingSince: string
  /** The last error, if any. */
  error?: string
  /** Its Kafka error code, if it is one (e.g. NOT_ENOUGH_REPLICAS). */
  code?: string
  /** What to change, in one sentence. */
  hint: string
}

export interface PartitionHealthOptions {
  topic: string
  /** Failed attempts in a row after which a partition counts as stalled. */
  failureThreshold: number
  /** How long a partition may wait with records and no commit before it counts as stalled. */
  stallAfterMs: number
  logger: Logger
  now?: () => number
}

interface PartitionState {
  waitingSince: number
  failures: number
  lastError?: unknown
  /** Whether the stall was already logged: it is said once, then once more when it clears. */
  reported: boolean
}

/** A broker that does not answer at all (kafkajs wraps the socket error, perhaps in a retry error). */
function isConnectionError(err: unknown): boolean {
  let e = err as { name?: unknown; cause?: unknown } | undefined
  for (let depth = 0; e && depth < 10; depth++) {
    if (e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSConnectionClosedError') return true
    e = e.cause as typeof e
  }
  return false
}

function hintFor(err: unknown, topic: string): string {
  if (kafkaErrorType(err) === undefined && isConnectionError(err))
    return 'a broker does not answer: once the cluster has moved its partitions elsewhere (about 10 s) the indexer goes on; if it lasts, bring the brokers back'
  switch (kafkaErrorType(err)) {
    case 'MESSAGE_TOO_LARGE':
    case 'RECORD_LIST_TOO_LARGE':
      return "a produce request is over a topic's max.message.bytes: raise it on the alerts or dead-letter topic, or lower INDEXER_PRODUCE_MAX_BATCH_BYTES"
    case 'UNKNOWN_TOPIC_OR_PARTITION':
      return 'a topic the indexer writes to is missing and the broker does not create topics: create the alerts and dead-letter topics'
    case 'NOT_ENOUGH_REPLICAS':
    case 'NOT_ENOUGH_REPLICAS_AFTER_APPEND':
      return 'fewer replicas are in sync than min.insync.replicas: bring the lost brokers back'
    // Kafka answers this, not NOT_ENOUGH_REPLICAS, when the consumer offsets or the transaction
    // log cannot take a write.
    case 'COORDINATOR_NOT_AVAILABLE':
    case 'GROUP_COORDINATOR_NOT_AVAILABLE':
    case 'NOT_COORDINATOR':
    case 'COORDINATOR_LOAD_IN_PROGRESS':
      return 'the group or transaction coordinator cannot take the commit: after a broker loss it moves within seconds; if it lasts, the offsets or transaction log topic has fewer replicas in sync than its minimum: bring the lost brokers back'
    case 'TOPIC_AUTHORIZATION_FAILED':
    case 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED':
    case 'GROUP_AUTHORIZATION_FAILED':
      return "the indexer's Kafka principal lacks a permission: grant it on the topics, the group and the transactional ids"
    default:
      return err === undefined
        ? `no commit on ${topic}: check the store and the broker`
        : 'see the error; the batch is retried with growing delays and nothing is skipped'
  }
}

/**
 * Tells a partition that makes no progress from one that is merely busy. The indexer retries a
 * failing batch for ever (skipping it would lose detections), so without this a permanent fault
 * looks like a healthy consumer: readiness and a metric report it, and the log says it once.
 */
export function createPartitionHealth(options: PartitionHealthOptions) {
  const { topic, failureThreshold, stallAfterMs, logger } = options
  const now = options.now ?? Date.now
  const partitions = new Map<number, PartitionState>()

  function describe(partition: number, state: PartitionState, at: number): StalledPartition | undefined {
    const failing = state.failures >= failureThreshold
    if (!failing && at - state.waitingSince < stallAfterMs) return undefined
    const code = kafkaErrorType(state.lastError)
    return {
      topic,
      partition,
      reason: failing ? 'failing' : 'no-progress',
      failures: state.failures,
      waitingSince: new Date(state.waitingSince).toISOString(),
      ...(state.lastError !== undefined && {
        error: (state.lastError as Error)?.message ?? String(state.lastError),
      }),
      ...(code !== undefined && { code }),
      hint: hintFor(state.lastError, topic),
    }
  }

  /** The partitions stalled now; logs each new stall once. */
  function stalled(): StalledPartition[] {
    const at = now()
    const result: StalledPartition[] = []
    for (const [partition, state] of partitions) {
      const stall = describe(partition, state, at)
      if (!stall) continue
      result.push(stall)
      if (!state.reported) {
        state.reported = true
        logger.error(
          { err: state.lastError, ...stall },
          `partition ${partition} of ${topic} is stalled (${stall.reason}): ${stall.hint}`,
        )
      }
    }
    return result
  }

  return {
    /** A batch of this partition is in hand: records are waiting from now, unless they already were. */
    waiting(partition: number): void {
      if (!partitions.has(partition))
        partitions.set(partition, { waitingSince: now(), failures: 0, reported: false })
    },
    failed(partition: number, err: unknown): void {
      const state = partitions.get(partition) ?? { waitingSince: now(), failures: 0, reported: false }
      state.failures++
      state.lastError = err
      partitions.set(partition, state)
      stalled()
    },
    /** The batch committed: the partition is healthy until its next batch waits. */
    committed(partition: number): void {
      const state = partitions.get(partition)
      partitions.delete(partition)
      if (state?.reported)
        logger.info({ topic, partition }, `partition ${partition} of ${topic} is moving again`)
    },
    /** Forgets partitions this member no longer owns. */
    retain(assigned: ReadonlySet<number>): void {
      for (const partition of partitions.keys()) if (!assigned.has(partition)) partitions.delete(partition)
    },
    stalled,
  }
}

export type PartitionHealth = ReturnType<typeof createPartitionHealth>
