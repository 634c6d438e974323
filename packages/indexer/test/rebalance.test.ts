import { describe, expect, it } from 'vitest'
import { BACKENDS } from '../../../test/support/detections-stores.js'
import {
  committedCount,
  createPipeline,
  createTopics,
  detections,
  expectExactlyOnce,
  type Produced,
  produce,
  startIndexer,
  waitFor,
} from './helpers.js'

describe.each(BACKENDS)('rebalance (%s detections store)', (backend) => {
  it('hands partitions between members mid-stream without a duplicate alert or a lost detection', async () => {
    const pipeline = await createPipeline({ backend })
    await createTopics(pipeline)
    const total = 2400
    const fixtures = detections(total)
    const produced: Produced[] = []
    // The backlog arrives in thirds, each while a membership change is under way, so every member
    // has records to take over however fast the store drains them.
    const produceThird = async (third: number) => {
      const slice = fixtures.slice((third * total) / 3, ((third + 1) * total) / 3)
      produced.push(
        ...(await produce(
          pipeline.kafka,
          pipeline.topics.detections,
          slice.map((d) => JSON.stringify(d)),
          { perSend: 30 },
        )),
      )
    }
    const stored = () => pipeline.store.storedCount()
    const small = { maxBytesPerPartition: 3072 }

    await produceThird(0)
    const first = await startIndexer(pipeline, small)
    await waitFor(async () => (await stored()) >= total * 0.1, { intervalMs: 10, what: '10% stored' })
    // A second member joins: partitions move while batches are in flight.
    const joining = startIndexer(pipeline, small)
    await produceThird(1)
    const second = await joining
    await waitFor(async () => (await stored()) >= total * 0.5, { intervalMs: 10, what: '50% stored' })
    // The first leaves gracefully while the last third arrives: its partitions move again.
    const leaving = first.stop()
    await produceThird(2)
    await leaving
    await waitFor(async () => (await committedCount(pipeline)) === total, { what: 'every offset committed' })

    await expectExactlyOnce(pipeline, fixtures, produced)

    // Both members did part of the work, so partitions really changed hands.
    const storedBy = async (registry: typeof first.registry) =>
      (await registry.getSingleMetric('indexer_stored_total')?.get())?.values[0]?.value ?? 0
    expect(await storedBy(first.registry)).toBeGreaterThan(0)
    expect(await storedBy(second.registry)).toBeGreaterThan(0)
    expect((await storedBy(first.registry)) + (await storedBy(second.registry))).toBe(total)
  })
})
