import { retry } from '@intellisite/common'
import type { Admin } from 'kafkajs'

const SETTLE_MS = 250
/** Reads that must agree in a row (spanning (SETTLE_AGREEING - 1) × SETTLE_MS). */
const SETTLE_AGREEING = 4
const SETTLE_READS = 20

const pause = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS))

export interface CommittedOffsetsOptions {
  admin: Admin
  groupId: string
  topic: string
}

/** The group's committed offsets on one topic, as the group coordinator reports them. */
export function createCommittedOffsets({ admin, groupId, topic }: CommittedOffsetsOptions) {
  /** -1 when the group has none for the partition. */
  async function read(partition: number): Promise<bigint> {
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
  async function settled(partition: number): Promise<bigint> {
    let previous = await read(partition)
    let agreeing = 1
    for (let reads = 0; reads < SETTLE_READS && agreeing < SETTLE_AGREEING; reads++) {
      await pause()
      const current = await read(partition)
      agreeing = current === previous ? agreeing + 1 : 1
      previous = current
    }
    return previous
  }

  /** The committed offset once it reaches `offset`, or the last one read if it does not within the settling reads. */
  async function reaching(partition: number, offset: bigint): Promise<bigint> {
    let committed = await read(partition)
    for (let reads = 0; reads < SETTLE_READS && committed < offset; reads++) {
      await pause()
      committed = await read(partition)
    }
    return committed
  }

  /** The partition's earliest offset still held: where to start when the group has no committed offset. */
  async function earliest(partition: number): Promise<bigint> {
    const watermarks = await retry(() => admin.fetchTopicOffsets(topic), {
      initialMs: 50,
      maxMs: 1_000,
      attempts: 20,
    })
    return BigInt(watermarks.find((p) => p.partition === partition)?.low ?? '0')
  }

  return { read, settled, reaching, earliest }
}

export type CommittedOffsets = ReturnType<typeof createCommittedOffsets>
