import { type Kafka, Partitioners, type Producer } from 'kafkajs'
import type { Logger } from 'pino'
import type { CommittedOffsets } from './committed-offsets.js'

/** This member's hold on one input partition: the transactional producer that commits its offsets. */
export interface PartitionOwner {
  readonly partition: number
  readonly producer: Producer
}

export interface OwnerState extends PartitionOwner {
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

export interface FencingOptions {
  kafka: Kafka
  groupId: string
  topic: string
  transactionTimeoutMs: number
  logger: Logger
  offsets: Pick<CommittedOffsets, 'settled'>
}

/**
 * Becomes the partition's owner: connects its transactional producer, fencing every earlier
 * producer of the same transactional id, then reads the committed offset that fencing made final.
 */
export async function fencePartition(options: FencingOptions, partition: number): Promise<OwnerState> {
  const { kafka, groupId, topic, logger } = options
  const transactionalId = `${groupId}-${topic}-${partition}`
  const producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: options.transactionTimeoutMs,
    // Every message names its partition; this only silences kafkajs's v2 migration warning.
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  try {
    // kafkajs sends the transactional InitProducerId lazily, on the first transaction(): an
    // empty transaction fences now, before this owner trusts the committed offset.
    const fence = await producer.transaction()
    await fence.abort()
    const fencedAt = await options.offsets.settled(partition)
    logger.debug({ partition, transactionalId, committed: String(fencedAt) }, 'transactional producer ready')
    return { partition, producer, fencedAt, lastCommitted: -1n, previousCommitted: -1n }
  } catch (err) {
    await producer.disconnect().catch(() => {})
    throw err
  }
}

/**
 * The owners of the partitions assigned to this member: one, opened by `open` on first use, per
 * partition until it is released (revoked, or replaced after a failed transaction).
 */
export function createOwnerRegistry(open: (partition: number) => Promise<OwnerState>, logger: Logger) {
  const owners = new Map<number, Promise<OwnerState>>()
  /** The same owners once open, for the synchronous bookkeeping of a commit. */
  const opened = new Map<number, OwnerState>()

  function acquire(partition: number): Promise<OwnerState> {
    let entry = owners.get(partition)
    if (!entry) {
      entry = open(partition).then((owner) => {
        opened.set(partition, owner)
        return owner
      })
      owners.set(partition, entry)
      entry.catch(() => owners.delete(partition))
    }
    return entry
  }

  async function release(partition: number): Promise<void> {
    const entry = owners.get(partition)
    if (!entry) return
    owners.delete(partition)
    const owner = await entry.catch(() => undefined)
    if (owner && opened.get(partition) === owner) opened.delete(partition)
    await owner?.producer.disconnect().catch((err: unknown) => logger.warn({ err, partition }, 'disconnect'))
  }

  return {
    acquire,
    /** The state of `owner` while it still owns its partition, else undefined. */
    current(owner: PartitionOwner): OwnerState | undefined {
      const state = opened.get(owner.partition)
      return state === owner ? state : undefined
    },
    release,
    /** Drops the producers of partitions this member no longer owns. */
    retain: async (assigned: ReadonlySet<number>) => {
      await Promise.all([...owners.keys()].filter((p) => !assigned.has(p)).map(release))
    },
    closeAll: async () => {
      await Promise.all([...owners.keys()].map(release))
    },
  }
}
