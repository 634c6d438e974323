import { describe, expect, it } from 'vitest'
import { BACKENDS } from '../../../test/support/detections-stores.js'
import {
  committedCount,
  createPipeline,
  createTopics,
  expectExactlyOnce,
  produceBacklog,
  startIndexer,
  waitFor,
} from './helpers.js'

describe.each(BACKENDS)('rebalance (%s detections store)', (backend) => {
  it('hands partitions between members mid-stream without a duplicate alert or a lost detection', async () => {
    const pipeline = await createPipeline({ backend })
    await createTopics(pipeline)
    const total = 2400
    const { fixtures, produced } = await produceBacklog(pipeline, total)
    const stored = () => pipeline.store.storedCount()
    const small = { maxBytesPerPartition: 3072 }

    const first = await startIndexer(pipeline, small)
    await waitFor(async () => (await stored()) >= total * 0.2, { intervalMs: 10, what: '20% stored' })
    // A second member joins: partitions move while batches are in flight.
    const second = await startIndexer(pipeline, small)
    await waitFor(async () => (await stored()) >= total * 0.6, { intervalMs: 10, what: '60% stored' })
    // The first leaves gracefully: its partitions move again.
    await first.stop()
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
