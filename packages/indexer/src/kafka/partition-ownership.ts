import { IntellisiteError, retry } from '@intellisite/common'
import { type Admin, type Kafka, Partitioners, type Producer } from 'kafkajs'
import type { Logger } from 'pino'

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

/** What a batch handler needs of the records it was given (a kafkajs `Batch` fits). */
export interface OwnedBatch<R extends { offset: string }> {
  topic: string
  partition: number
  messages: R[]
  lastOffset(): string
}

/** This member's hold on one input partition: the transactional producer that commits its offsets. */
export interface PartitionOwner {
  readonly partition: number
  readonly producer: Producer
}

interface OwnerState extends PartitionOwner {
  /**
   * The group's committed offset read right after fencing: records below it were processed by a
   * previous owner whose transaction committed after this instance had fetched its start offset.
   * -1 once used.
   */
  fencedAt: bigint
  /** The offset this owner last committed for the partition (-1 before its first commit). */
  lastCommitted: bigint
  /** The one it committed before that (-1 until its second commit). */
  previousCommitted: bigint
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

const SETTLE_MS = 250
/** Reads that must agree in a row (spanning (SETTLE_AGREEING - 1) × SETTLE_MS). */
const SETTLE_AGREEING = 4
const SETTLE_READS = 20

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
  const { kafka, admin, groupId, topic, transactionTimeoutMs, logger, seek } = options
  const owners = new Map<number, Promise<OwnerState>>()
  /** The same owners once open, for the synchronous bookkeeping of a commit. */
  const open = new Map<number, OwnerState>()

  async function committedOffset(partition: number): Promise<bigint> {
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    return BigInt(offsets[0]?.partitions.find((p) => p.partition === partition)?.offset ?? '-1')
  }

  /**
   * The committed offset once it has settled. Fencing waits for the previous owner's transaction
   * to complete, but the group coordinator applies that transaction's offset commit a moment
   * later, and kafkajs's OffsetFetch (before v7) cannot ask for stable offsets (KIP-447
   * `require_stable`): a read right after fencing can return the offset from before that commit,
   * and the batch it covered would be published twice. The broker applies it from a scheduler
   * thread of its own, which a loaded machine can delay by more than one read interval, so two
   * agreeing reads 250 ms apart are not proof that it has. So the offset is read until
   * SETTLE_AGREEING reads in a row, SETTLE_MS apart, agree.
   */
  async function settledCommittedOffset(partition: number): Promise<bigint> {
    let previous = await committedOffset(partition)
    let agreeing = 1
    for (let read = 0; read < SETTLE_READS && agreeing < SETTLE_AGREEING; read++) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
      const current = await committedOffset(partition)
      agreeing = current === previous ? agreeing + 1 : 1
      previous = current
    }
    return previous
  }

  async function openOwner(partition: number): Promise<OwnerState> {
    const transactionalId = `${groupId}-${topic}-${partition}`
    const producer = kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: transactionTimeoutMs,
      // Every message names its partition; this only silences kafkajs's v2 migration warning.
      createPartitioner: Partitioners.DefaultPartitioner,
    })
    await producer.connect()
    try {
      // kafkajs sends the transactional InitProducerId lazily, on the first transaction(): an
      // empty transaction fences now, before this owner trusts the committed offset.
      const fence = await producer.transaction()
      await fence.abort()
      const fencedAt = await settledCommittedOffset(partition)
      logger.debug(
        { partition, transactionalId, committed: String(fencedAt) },
        'transactional producer ready',
      )
      const owner = { partition, producer, fencedAt, lastCommitted: -1n, previousCommitted: -1n }
      open.set(partition, owner)
      return owner
    } catch (err) {
      await producer.disconnect().catch(() => {})
      throw err
    }
  }

  function state(partition: number): Promise<OwnerState> {
    let entry = owners.get(partition)
    if (!entry) {
      entry = openOwner(partition)
      owners.set(partition, entry)
      entry.catch(() => owners.delete(partition))
    }
    return entry
  }

  function ownerState(owner: PartitionOwner): OwnerState {
    const current = open.get(owner.partition)
    if (current !== owner) throw new Error(`partition ${owner.partition} changed owner during its batch`)
    return current
  }

  /**
   * Kafka drops a group's offsets when the topic is deleted, but kafkajs keeps fetching from its
   * in-memory position: on a re-created topic that would silently skip the new records below it.
   * So the broker's committed offset is checked before each batch. It may lag our last commit
   * (EndTxn returns before the offset commit is materialised), but never the one before it: a
   * transactional id cannot start a transaction until its previous one is complete. Below that,
   * the offsets were dropped or reset; start again from the broker's (or the beginning).
   */
  async function positionStillValid(owner: OwnerState): Promise<boolean> {
    if (owner.previousCommitted < 0n) return true
    const committed = await committedOffset(owner.partition)
    if (committed >= owner.previousCommitted) return true
    await restartFrom(owner, committed)
    return false
  }

  /** Offsets dropped or reset under this owner: forget its commits and seek to the broker's. */
  async function restartFrom(owner: OwnerState, committed: bigint): Promise<void> {
    const { partition } = owner
    let offset = committed
    if (offset < 0n) {
      const watermarks = await retry(() => admin.fetchTopicOffsets(topic), {
        initialMs: 50,
        maxMs: 1_000,
        attempts: 20,
      })
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
    seek(partition, offset)
  }

  /**
   * A batch that starts below this owner's own last commit. After a rebalance that keeps the
   * partition here, kafkajs restarts from the group's committed offset, which may not show our
   * last commit yet: our last batch comes again, and publishing it would duplicate its alerts.
   * The broker shows that commit within moments; one that stays below it was dropped or reset
   * (e.g. the topic was re-created), and then the records below are new.
   */
  async function ownCommitShown(owner: OwnerState): Promise<boolean> {
    let committed = await committedOffset(owner.partition)
    for (let read = 0; read < SETTLE_READS && committed < owner.lastCommitted; read++) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
      committed = await committedOffset(owner.partition)
    }
    if (committed >= owner.lastCommitted) return true
    await restartFrom(owner, committed)
    return false
  }

  /**
   * The records of `batch` this owner must still process, or null when there are none (the
   * consumer was moved where it must go on). A zombie may have committed this partition between
   * our offset fetch and our fencing; the committed offset read after fencing is the truth.
   */
  async function claim<R extends { offset: string }>(
    owner: PartitionOwner,
    batch: OwnedBatch<R>,
  ): Promise<R[] | null> {
    const current = ownerState(owner)
    if (!(await positionStillValid(current))) return null
    const fencedAt = current.fencedAt
    current.fencedAt = -1n
    let done = fencedAt
    const first = BigInt(batch.messages[0]?.offset ?? batch.lastOffset())
    if (current.lastCommitted > fencedAt && first < current.lastCommitted) {
      if (!(await ownCommitShown(current))) return null
      done = current.lastCommitted
    }
    if (done < 0n) return batch.messages
    if (done > BigInt(batch.lastOffset())) {
      logger.warn(
        { partition: batch.partition, committed: String(done) },
        'batch already committed: skipping it',
      )
      seek(batch.partition, done)
      return null
    }
    return batch.messages.filter((message) => BigInt(message.offset) >= done)
  }

  /** The owner's transaction committed the partition's offset at `next`. */
  function committed(owner: PartitionOwner, next: bigint): void {
    const current = open.get(owner.partition)
    if (current !== owner) return
    current.previousCommitted = current.lastCommitted
    current.lastCommitted = next
  }

  async function release(partition: number): Promise<void> {
    const entry = owners.get(partition)
    if (!entry) return
    owners.delete(partition)
    const opened = await entry.catch(() => undefined)
    if (opened && open.get(partition) === opened) open.delete(partition)
    await opened?.producer.disconnect().catch((err: unknown) => logger.warn({ err, partition }, 'disconnect'))
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
    await release(partition)
    const owner = await state(partition)
    const committed = owner.fencedAt
    if (committed > BigInt(batch.lastOffset())) {
      owner.fencedAt = -1n
      owner.lastCommitted = committed
      return { owner, outcome: 'all' }
    }
    // Left in `fencedAt` for `claim` to skip what the other owner did when the batch comes again.
    if (committed > BigInt(records[0]?.offset ?? batch.lastOffset())) return { owner, outcome: 'part' }
    owner.fencedAt = -1n
    return { owner, outcome: 'none' }
  }

  /** Drops the producers of partitions this member no longer owns. */
  async function retain(assigned: ReadonlySet<number>): Promise<void> {
    await Promise.all([...owners.keys()].filter((p) => !assigned.has(p)).map(release))
  }

  async function closeAll(): Promise<void> {
    await Promise.all([...owners.keys()].map(release))
  }

  return {
    acquire: (partition: number): Promise<PartitionOwner> =>
      unavailableOnError(partition, () => state(partition)),
    claim: <R extends { offset: string }>(owner: PartitionOwner, batch: OwnedBatch<R>) =>
      unavailableOnError(batch.partition, () => claim(owner, batch)),
    committed,
    reacquire: (...args: Parameters<typeof reacquire>) =>
      unavailableOnError(args[0], () => reacquire(...args)),
    release,
    retain,
    closeAll,
  }
}

export type PartitionOwnership = ReturnType<typeof createPartitionOwnership>
