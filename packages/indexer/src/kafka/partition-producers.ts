import { type Admin, type Kafka, Partitioners, type Producer } from 'kafkajs'
import type { Logger } from 'pino'

export interface PartitionProducer {
  partition: number
  producer: Producer
  /**
   * The group's committed offset read right after fencing: records below it were processed by a
   * previous owner whose transaction committed after this instance had fetched its start offset.
   */
  committedOffset: bigint
  /** The offset this owner last committed for the partition (-1 before its first commit). */
  lastCommitted: bigint
  /** The one it committed before that (-1 until its second commit). */
  previousCommitted: bigint
}

export interface PartitionProducersOptions {
  kafka: Kafka
  admin: Admin
  groupId: string
  topic: string
  transactionTimeoutMs: number
  logger: Logger
}

/**
 * One transactional producer per assigned input partition, with a transactional id stable across
 * restarts and owners: `${groupId}-${topic}-${partition}`. kafkajs's `sendOffsets` sends no
 * consumer-group metadata (KIP-447), so the broker cannot fence a zombie by group generation;
 * this is the pre-KIP-447 scheme instead. The first `InitProducerId` of a new owner bumps the
 * epoch, which aborts the previous owner's open transaction at once and makes any later
 * commit from it fail with a fencing error.
 */
export function createPartitionProducers(options: PartitionProducersOptions) {
  const { kafka, admin, groupId, topic, transactionTimeoutMs, logger } = options
  const producers = new Map<number, Promise<PartitionProducer>>()

  async function open(partition: number): Promise<PartitionProducer> {
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
      const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
      const committed = offsets[0]?.partitions.find((p) => p.partition === partition)?.offset ?? '-1'
      logger.debug({ partition, transactionalId, committed }, 'transactional producer ready')
      return {
        partition,
        producer,
        committedOffset: BigInt(committed),
        lastCommitted: -1n,
        previousCommitted: -1n,
      }
    } catch (err) {
      await producer.disconnect().catch(() => {})
      throw err
    }
  }

  function acquire(partition: number): Promise<PartitionProducer> {
    let entry = producers.get(partition)
    if (!entry) {
      entry = open(partition)
      producers.set(partition, entry)
      entry.catch(() => producers.delete(partition))
    }
    return entry
  }

  async function release(partition: number): Promise<void> {
    const entry = producers.get(partition)
    if (!entry) return
    producers.delete(partition)
    const opened = await entry.catch(() => undefined)
    await opened?.producer.disconnect().catch((err: unknown) => logger.warn({ err, partition }, 'disconnect'))
  }

  /** Drops the producers of partitions this member no longer owns. */
  async function retain(assigned: ReadonlySet<number>): Promise<void> {
    await Promise.all([...producers.keys()].filter((p) => !assigned.has(p)).map(release))
  }

  async function closeAll(): Promise<void> {
    await Promise.all([...producers.keys()].map(release))
  }

  return { acquire, release, retain, closeAll }
}

export type PartitionProducers = ReturnType<typeof createPartitionProducers>
