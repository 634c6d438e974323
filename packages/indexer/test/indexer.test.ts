import { BUILTIN_RULE_ID } from '@intellisite/alert-rules'
import { detectionId } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import {
  createPipeline,
  detections,
  isSuspicious,
  parseAlerts,
  produce,
  readTopic,
  startIndexer,
  waitFor,
} from './helpers.js'

describe('indexer', () => {
  it('stores every detection once and alerts exactly the suspicious ones', async () => {
    const pipeline = await createPipeline()
    const { registry } = await startIndexer(pipeline)
    const fixtures = detections(400)
    const produced = await produce(
      pipeline.kafka,
      pipeline.topics.detections,
      fixtures.map((d) => JSON.stringify(d)),
    )

    await waitFor(async () => (await pipeline.store.storedCount()) >= produced.length, {
      what: 'all detections stored',
    })
    const suspicious = fixtures.filter((d) => isSuspicious(d.Category))
    // The fixture covers every quirk the rule must get right.
    for (const category of ['SUV', 'SUV, Pickup', 'Wagon, SUV', 'suv']) {
      expect(suspicious.some((d) => d.Category === category)).toBe(true)
    }
    expect(fixtures.some((d) => d.Category === 'Pickup')).toBe(true)

    const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, suspicious.length))
    expect(alerts).toHaveLength(suspicious.length)
    expect(await pipeline.store.storedCount()).toBe(produced.length)

    const byId = new Map(alerts.map((alert) => [alert.id, alert]))
    for (const [i, record] of produced.entries()) {
      const fixture = fixtures[i]!
      const id = detectionId({ topic: pipeline.topics.detections, ...record })
      const document = await pipeline.store.storedDocument(id)
      expect(document).toMatchObject({
        year: fixture.Year,
        make: fixture.Make,
        model: fixture.Model,
        category: fixture.Category,
        makeKey: fixture.Make.toLowerCase(),
        detectedAt: new Date(record.timestamp),
        suspicious: isSuspicious(fixture.Category),
        source: { topic: pipeline.topics.detections, partition: record.partition, offset: record.offset },
      })
      const alert = byId.get(id)
      if (!isSuspicious(fixture.Category)) {
        expect(alert).toBeUndefined()
        continue
      }
      expect(alert).toEqual({
        id,
        detectedAt: new Date(record.timestamp).toISOString(),
        year: fixture.Year,
        make: fixture.Make,
        model: fixture.Model,
        category: fixture.Category,
        reason: 'category matches SUV',
        rules: [{ id: BUILTIN_RULE_ID, version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' }],
      })
    }

    // Per-make counts are exact and case-insensitive (MAZDA and mazda are one make).
    const expected = new Map<string, number>()
    for (const d of fixtures)
      expected.set(d.Make.toLowerCase(), (expected.get(d.Make.toLowerCase()) ?? 0) + 1)
    const stats = await pipeline.repository.stats('make')
    expect(stats.total).toBe(fixtures.length)
    expect(new Map(stats.items.map((item) => [item.value.toLowerCase(), item.count]))).toEqual(expected)

    const text = await registry.metrics()
    expect(text).toContain(`indexer_consumed_total ${fixtures.length}`)
    expect(text).toContain(`indexer_stored_total ${fixtures.length}`)
    expect(text).toContain(`indexer_alerts_total ${suspicious.length}`)
    expect(text).toMatch(/indexer_bulk_write_seconds_count \d+/)
    expect(text).toMatch(/indexer_consumer_lag_messages\{topic="[^"]+",partition="0"\} 0/)
  })

  it('keeps per-partition order from detections to alerts', async () => {
    const pipeline = await createPipeline()
    await startIndexer(pipeline)
    const fixtures = detections(120).map((d) => ({ ...d, Category: 'SUV' }))
    const produced = await produce(
      pipeline.kafka,
      pipeline.topics.detections,
      fixtures.map((d) => JSON.stringify(d)),
    )
    const records = await readTopic(pipeline.kafka, pipeline.topics.alerts, produced.length)
    const idToSource = new Map(
      produced.map((p) => [detectionId({ topic: pipeline.topics.detections, ...p }), p] as const),
    )
    const seen = new Map<number, number>()
    for (const record of records) {
      const source = idToSource.get(record.key ?? '')
      expect(source).toBeDefined()
      // Source partition p maps to alerts partition p mod (alerts partitions).
      expect(record.partition).toBe(source!.partition)
      expect(source!.offset).toBeGreaterThan(seen.get(source!.partition) ?? -1)
      seen.set(source!.partition, source!.offset)
    }
  })
})
