import type { Logger } from 'pino'
import type { CommittedOffsets } from './committed-offsets.js'
import type { OwnerState } from './partition-owners.js'

/** What a batch handler needs of the records it was given (a kafkajs `Batch` fits). */
export interface OwnedBatch<R extends { offset: string }> {
  topic: string
  partition: number
  messages: R[]
  lastOffset(): string
}

export interface ClaimContext {
  offsets: Pick<CommittedOffsets, 'read' | 'reaching' | 'earliest'>
  logger: Logger
  /** Moves the consumer's position on a partition (kafkajs `consumer.seek`). */
  seek: (partition: number, offset: bigint) => void
}

/**
 * The records of `batch` this owner must still process, or null when there are none (the
 * consumer was moved where it must go on). A zombie may have committed this partition between
 * our offset fetch and our fencing; the committed offset read after fencing is the truth.
 */
export async function claimBatch<R extends { offset: string }>(
  context: ClaimContext,
  owner: OwnerState,
  batch: OwnedBatch<R>,
): Promise<R[] | null> {
  if (!(await positionStillValid(context, owner))) return null
  const fencedAt = owner.fencedAt
  owner.fencedAt = -1n
  let done = fencedAt
  const first = BigInt(batch.messages[0]?.offset ?? batch.lastOffset())
  if (owner.lastCommitted > fencedAt && first < owner.lastCommitted) {
    if (!(await ownCommitShown(context, owner))) return null
    done = owner.lastCommitted
  }
  if (done < 0n) return batch.messages
  if (done > BigInt(batch.lastOffset())) {
    context.logger.warn(
      { partition: batch.partition, committed: String(done) },
      'batch already committed: skipping it',
    )
    context.seek(batch.partition, done)
    return null
  }
  return batch.messages.filter((message) => BigInt(message.offset) >= done)
}

/**
 * Kafka drops a group's offsets when the topic is deleted, but kafkajs keeps fetching from its
 * in-memory position: on a re-created topic that would silently skip the new records below it.
 * So the broker's committed offset is checked before each batch. It may lag our last commit
 * (EndTxn returns before the offset commit is materialised), but never the one before it: a
 * transactional id cannot start a transaction until its previous one is complete. Below that,
 * the offsets were dropped or reset; start again from the broker's (or the beginning).
 */
async function positionStillValid(context: ClaimContext, owner: OwnerState): Promise<boolean> {
  if (owner.previousCommitted < 0n) return true
  const committed = await context.offsets.read(owner.partition)
  if (committed >= owner.previousCommitted) return true
  await restartFrom(context, owner, committed)
  return false
}

/**
 * A batch that starts below this owner's own last commit. After a rebalance that keeps the
 * partition here, kafkajs restarts from the group's committed offset, which may not show our
 * last commit yet: our last batch comes again, and publishing it would duplicate its alerts.
 * The broker shows that commit within moments; one that stays below it was dropped or reset
 * (e.g. the topic was re-created), and then the records below are new.
 */
async function ownCommitShown(context: ClaimContext, owner: OwnerState): Promise<boolean> {
  const committed = await context.offsets.reaching(owner.partition, owner.lastCommitted)
  if (committed >= owner.lastCommitted) return true
  await restartFrom(context, owner, committed)
  return false
}

/** Offsets dropped or reset under this owner: forget its commits and seek to the broker's. */
async function restartFrom(context: ClaimContext, owner: OwnerState, committed: bigint): Promise<void> {
  const { partition } = owner
  const offset = committed < 0n ? await context.offsets.earliest(partition) : committed
  context.logger.warn(
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
  context.seek(partition, offset)
}
