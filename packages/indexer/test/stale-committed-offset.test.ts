// A batch this indexer committed itself comes again. After a rebalance that keeps a partition on
// the same member, kafkajs restarts it from the group's committed offset, read with OffsetFetch;
// the group coordinator materialises a transaction's offset commit a moment after EndTxn returns,
// so that read can still show the commit before our last one, and our last batch is delivered
// again. Publishing it again would duplicate its alerts.
//
// kafkajs's RoundRobinAssigner ignores what each member subscribed to, so a second member would
// take partitions away rather than force a rebalance that keeps them all here. The test moves the
// consumer the way such a restart does instead: with `autoCommit: false`, `consumer.seek` only sets
// the in-memory position (resolveOffset(offset - 1)), as a new OffsetManager does from a committed
// offset. The indexer's admin shows the stale committed offset for its next few reads, as the
// coordinator does until the last commit is materialised.

import type { Admin, Consumer, ConsumerConfig, Kafka } from 'kafkajs'
import { expect, it } from 'vitest'
import {
  committedCount,
  createPipeline,
  createTopics,
  detections,
  expectExactlyOnce,
  isSuspicious,
  produce,
  startIndexer,
  testKafka,
  waitFor,
} from './helpers.js'

interface HandledBatch {
  partition: number
  firstOffset: bigint
  lastOffset: bigint
}

/**
 * A real client that hands the test the indexer's consumer and every batch it finished handling,
 * and whose admins can be made to report a stale committed offset for a partition.
 */
function withControlledConsumer(kafka: Kafka) {
  let consumer: Consumer | undefined
  const handled: HandledBatch[] = []
  let lag: { topic: string; partition: number; offset: string; reads: number } | undefined
  let staleReads = 0

  const consumerOf = (config: ConsumerConfig): Consumer => {
    const real = kafka.consumer(config)
    real.on(real.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.firstOffset === null) return
      handled.push({
        partition: payload.partition,
        firstOffset: BigInt(payload.firstOffset),
        lastOffset: BigInt(payload.lastOffset),
      })
    })
    consumer = real
    return real
  }

  const admin = (): Admin => {
    const real = kafka.admin()
    return Object.assign(Object.create(real) as Admin, {
      fetchOffsets: (async (...args: Parameters<Admin['fetchOffsets']>) => {
        const offsets = await real.fetchOffsets(...args)
        if (!lag || staleReads >= lag.reads) return offsets
        const { topic, partition, offset } = lag
        staleReads++
        return offsets.map((t) =>
          t.topic !== topic
            ? t
            : {
                ...t,
                partitions: t.partitions.map((p) => (p.partition === partition ? { ...p, offset } : p)),
              },
        )
      }) as Admin['fetchOffsets'],
    })
  }

  return {
    kafka: Object.assign(Object.create(kafka) as Kafka, { consumer: consumerOf, admin }),
    consumer: () => {
      if (!consumer) throw new Error('the indexer has not created its consumer yet')
      return consumer
    },
    handled,
    /** The next `reads` committed-offset reads show `offset` for the partition. */
    lagCommitted: (topic: string, partition: number, offset: bigint, reads: number) => {
      lag = { topic, partition, offset: String(offset), reads }
      staleReads = 0
    },
    staleReads: () => staleReads,
  }
}

it('never publishes again a batch it committed itself when kafkajs restarts from a stale committed offset', async () => {
  const pipeline = await createPipeline()
  await createTopics(pipeline)
  const topic = pipeline.topics.detections
  // Small fetches: many batches per partition, so the owner has a last and a previous commit.
  const client = withControlledConsumer(testKafka('indexer', pipeline.brokers))
  await startIndexer(pipeline, { maxBytesPerPartition: 2048 }, pipeline.repository, { kafka: client.kafka })

  const fixtures = detections(300)
  const produced = await produce(
    pipeline.kafka,
    topic,
    fixtures.map((d) => JSON.stringify(d)),
  )
  const partition = 0
  const end = BigInt(produced.filter((p) => p.partition === partition).length)
  const finished = (batch: HandledBatch) => batch.partition === partition && batch.lastOffset + 1n === end
  await waitFor(
    async () => client.handled.some(finished) && (await committedCount(pipeline)) === produced.length,
    { timeoutMs: 60_000, what: 'every detection committed' },
  )

  // The last batch of the partition, which the indexer stored, published and committed itself.
  const batches = client.handled.filter((batch) => batch.partition === partition)
  expect(batches.length).toBeGreaterThanOrEqual(3)
  const last = batches.findLast(finished)
  if (!last) throw new Error('no batch reached the end of the partition')
  const again = fixtures.filter(
    (_, i) => produced[i]?.partition === partition && BigInt(produced[i]?.offset ?? -1) >= last.firstOffset,
  )
  expect(again.some((d) => isSuspicious(d.Category))).toBe(true)

  // kafkajs restarts the partition from the commit before the last one, and the coordinator still
  // shows that one for a few reads.
  const seen = client.handled.length
  client.lagCommitted(topic, partition, last.firstOffset, 3)
  client.consumer().seek({ topic, partition, offset: String(last.firstOffset) })
  await waitFor(
    () =>
      client.handled
        .slice(seen)
        .some((batch) => batch.partition === partition && batch.firstOffset === last.firstOffset),
    { timeoutMs: 20_000, what: 'the last batch delivered again and handled' },
  )

  await expectExactlyOnce(pipeline, fixtures, produced)
  expect(await committedCount(pipeline)).toBe(produced.length)
  // The batch was claimed while the coordinator lagged, and waited until it showed our commit.
  expect(client.staleReads()).toBe(3)
}, 90_000)
