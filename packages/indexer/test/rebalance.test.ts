import { detectionId } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import {
  committedCount,
  createPipeline,
  createTopics,
  detections,
  isSuspicious,
  parseAlerts,
  produce,
  readTopic,
  startIndexer,
  waitFor,
} from './helpers.js'

describe('rebalance', () => {
  it('hands partitions between members mid-stream without a duplicate alert or a lost detection', async () => {
    const pipeline = await createPipeline()
    await createTopics(pipeline)
    const total = 2400
    const fixtures = detections(total)
    const produced = await produce(
      pipeline.kafka,
      pipeline.topics.detections,
      fixtures.map((d) => JSON.stringify(d)),
      { perSend: 30 },
    )
    const stored = () => pipeline.repository.collection.countDocuments()
    const small = { maxBytesPerPartition: 3072 }

    const first = await startIndexer(pipeline, small)
    await waitFor(async () => (await stored()) >= total * 0.2, { intervalMs: 10, what: '20% stored' })
    // A second member joins: partitions move while batches are in flight.
    const second = await startIndexer(pipeline, small)
    await waitFor(async () => (await stored()) >= total * 0.6, { intervalMs: 10, what: '60% stored' })
    // The first leaves gracefully: its partitions move again.
    await first.stop()
    await waitFor(async () => (await committedCount(pipeline)) === total, { what: 'every offset committed' })

    const expectedIds = produced.map((p) => detectionId({ topic: pipeline.topics.detections, ...p }))
    const documents = await pipeline.repository.collection.find({}, { projection: { _id: 1 } }).toArray()
    expect(documents).toHaveLength(total)
    expect(new Set(documents.map((d) => d._id))).toEqual(new Set(expectedIds))

    const suspiciousIds = expectedIds.filter((_, i) => isSuspicious(fixtures[i]!.Category))
    const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, suspiciousIds.length))
    expect(alerts).toHaveLength(suspiciousIds.length)
    expect(new Set(alerts.map((a) => a.id))).toEqual(new Set(suspiciousIds))
    expect((await pipeline.repository.stats('make')).total).toBe(total)

    // Both members did part of the work, so partitions really changed hands.
    const storedBy = async (registry: typeof first.registry) =>
      (await registry.getSingleMetric('indexer_stored_total')?.get())?.values[0]?.value ?? 0
    expect(await storedBy(first.registry)).toBeGreaterThan(0)
    expect(await storedBy(second.registry)).toBeGreaterThan(0)
    expect((await storedBy(first.registry)) + (await storedBy(second.registry))).toBe(total)
  })
})
