import { IntellisiteError } from '@intellisite/common'
import type { Admin, Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { claimBatch, type OwnedBatch } from './batch-claim.js'
import { createCommittedOffsets } from './committed-offsets.js'
import {
  createOwnerRegistry,
  fencePartition,
  type OwnerState,
  type PartitionOwner,
} from './partition-owners.js'

export type { OwnedBatch } from './batch-claim.js'
export type { PartitionOwner } from './partition-owners.js'

/**
 * Taking or checking a partition's ownership failed on the way to Kafka (e.g. the group
 * coordinator is moving after a broker restart, which kafkajs's admin reports as non-retriable).
 * Retriable on purpose: kafkajs then redelivers the batch and restarts the consumer after its
 * retries, instead of stopping the consumer for good.
 */
export class OwnershipUnavailableError extends IntellisiteError<'OWNERSHIP_UNAVAILABLE'> {
  constructor(partition: number, cause: unknown) {
    super(
      'OWNERSHIP_UNAVAILABLE',
      `partition ${partition}: ownership not confirmed: ${(cause as Error)?.message ?? String(cause)}`,
      { cause },
    )
  }
}

/** Runs an ownership step; any failure becomes an {@link OwnershipUnavailableError}. */
async function unavailableOnError<T>(partition: number, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    throw err instanceof OwnershipUnavailableError ? err : new OwnershipUnavailableError(partition, err)
  }
}

export interface PartitionOwnershipOptions {
  kafka: Kafka
  admin: Admin
  groupId: string
  topic: string
  transactionTimeoutMs: number
  logger: Logger
  /** Moves the consumer's position on a partition (kafkajs `consumer.seek`). */
  seek: (partition: number, offset: bigint) => void
}

/** What the broker holds after a transaction whose outcome we did not see. */
export type CommitOutcome = 'none' | 'all' | 'part'

/**
 * Which input partitions this member owns, and the committed offsets that prove it. One
 * transactional producer per assigned partition, with a transactional id stable across restarts
 * and owners: `${groupId}-${topic}-${partition}`. kafkajs's `sendOffsets` sends no consumer-group
 * metadata (KIP-447), so the broker cannot fence a zombie by group generation; this is the
 * pre-KIP-447 scheme instead. The first `InitProducerId` of a new owner bumps the epoch, which
 * aborts the previous owner's open transaction at once and makes any later commit from it fail
 * with a fencing error. Every read and write of the committed-offset state happens here.
 */
export function createPartitionOwnership(options: PartitionOwnershipOptions) {
  const { logger, seek } = options
  const offsets = createCommittedOffsets(options)
  const owners = createOwnerRegistry(
    (partition) => fencePartition({ ...options, offsets }, partition),
    logger,
  )
  const checks = { offsets, logger, seek }

  async function claim<R extends { offset: string }>(
    owner: PartitionOwner,
    batch: OwnedBatch<R>,
  ): Promise<R[] | null> {
    const current = owners.current(owner)
    if (!current) throw new Error(`partition ${owner.partition} changed owner during its batch`)
    return claimBatch(checks, current, batch)
  }

  /** The owner's transaction committed the partition's offset at `next`. */
  function committed(owner: PartitionOwner, next: bigint): void {
    const current = owners.current(owner)
    if (!current) return
    current.previousCommitted = current.lastCommitted
    current.lastCommitted = next
  }

  /**
   * After a transaction that failed (and was aborted as far as we know): a fresh producer fences
   * the old one and re-reads the committed offset, which tells whether the broker committed the
   * batch after all (its answer was lost), a part of it (another owner meanwhile), or none.
   */
  async function reacquire(
    partition: number,
    batch: OwnedBatch<{ offset: string }>,
    records: readonly { offset: string }[],
  ): Promise<{ owner: PartitionOwner; outcome: CommitOutcome }> {
    await owners.release(partition)
    const owner = await owners.acquire(partition)
    return { owner, outcome: outcomeSeenByFencing(owner, batch, records) }
  }

  return {
    acquire: (partition: number): Promise<PartitionOwner> =>
      unavailableOnError(partition, () => owners.acquire(partition)),
    claim: <R extends { offset: string }>(owner: PartitionOwner, batch: OwnedBatch<R>) =>
      unavailableOnError(batch.partition, () => claim(owner, batch)),
    committed,
    reacquire: (...args: Parameters<typeof reacquire>) =>
      unavailableOnError(args[0], () => reacquire(...args)),
    release: owners.release,
    retain: owners.retain,
    closeAll: owners.closeAll,
  }
}

export type PartitionOwnership = ReturnType<typeof createPartitionOwnership>

/**
 * What the broker committed of `batch`, by the offset a fresh owner read when it fenced. With
 * `all`, this owner takes that commit as its own.
 */
function outcomeSeenByFencing(
  owner: OwnerState,
  batch: OwnedBatch<{ offset: string }>,
  records: readonly { offset: string }[],
): CommitOutcome {
  const committed = owner.fencedAt
  if (committed > BigInt(batch.lastOffset())) {
    owner.fencedAt = -1n
    owner.lastCommitted = committed
    return 'all'
  }
  // Left in `fencedAt` for `claim` to skip what the other owner did when the batch comes again.
  if (committed > BigInt(records[0]?.offset ?? batch.lastOffset())) return 'part'
  owner.fencedAt = -1n
  return 'none'
}
