import type { Collection, Db } from 'mongodb'
import type { DetectionDocument } from './detection.js'
import {
  countOnce,
  decodeField,
  encodeField,
  groupByPartition,
  type WatermarkedDocument,
} from './mongo-counted-once.js'
import { STATS_DIMENSIONS, type StatsDimension, type StatsItem, type StatsResult } from './repository.js'

/**
 * One document per (dimension, topic, partition): `counts` maps a case-folded value to how many
 * detections of that partition with offset <= `through` have it; `labels` keeps a display spelling.
 *
 * Why this shape: `GET /stats` must stay exact and cheap at tens of millions of detections, and
 * each update is a single-document compare-and-set (see `countOnce`), so redelivery of a batch
 * never counts twice, whatever the batch boundaries are. Reading stats touches
 * 4 × partitions documents, not the detections.
 */
interface CounterDocument extends WatermarkedDocument {
  dim: StatsDimension
  topic: string
  partition: number
  counts: Record<string, number>
  labels: Record<string, string>
}

export function dimensionValue(
  document: DetectionDocument,
  dim: StatsDimension,
): { key: string; label: string } {
  switch (dim) {
    case 'make':
      return { key: document.makeKey, label: document.make }
    case 'model':
      return { key: document.modelKey, label: document.model }
    case 'category':
      return { key: document.categoryKey, label: document.category }
    case 'year':
      return { key: String(document.year), label: String(document.year) }
  }
}

export function createStatsCounters(db: Db, collectionName = 'detection_counters') {
  const counters: Collection<CounterDocument> = db.collection<CounterDocument>(collectionName)

  async function ensureIndexes(): Promise<void> {
    await counters.createIndex({ dim: 1 }, { name: 'dim' })
  }

  /** Counts a batch that has just been inserted; `fresh` holds the ids this batch inserted. */
  async function apply(documents: readonly DetectionDocument[], fresh: ReadonlySet<string>): Promise<void> {
    const work: Promise<void>[] = []
    for (const { documents: group } of groupByPartition(documents, () => '').values()) {
      const { topic, partition } = group[0]!.source
      for (const dim of STATS_DIMENSIONS) {
        work.push(
          countOnce(
            counters,
            `${dim}\u0000${topic}\u0000${partition}`,
            { dim, topic, partition, counts: {}, labels: {} },
            group,
            fresh,
            (counted) => {
              const inc: Record<string, number> = {}
              const set: Record<string, unknown> = {}
              for (const document of counted) {
                const { key, label } = dimensionValue(document, dim)
                const field = encodeField(key)
                inc[`counts.${field}`] = (inc[`counts.${field}`] ?? 0) + 1
                set[`labels.${field}`] = label
              }
              return { inc, set }
            },
          ),
        )
      }
    }
    await Promise.all(work)
  }

  async function read(dim: StatsDimension): Promise<StatsResult> {
    const totals = new Map<string, StatsItem>()
    for await (const doc of counters.find({ dim }, { projection: { counts: 1, labels: 1 } })) {
      for (const [field, count] of Object.entries(doc.counts ?? {})) {
        const item = totals.get(field)
        if (item) item.count += count
        else totals.set(field, { value: doc.labels?.[field] ?? decodeField(field), count })
      }
    }
    const items = [...totals.values()].filter((item) => item.count > 0)
    items.sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0))
    return { total: items.reduce((sum, item) => sum + item.count, 0), items }
  }

  /** Count for one value of a dimension (case-insensitive), e.g. all detections of make `mazda`. */
  async function countOf(dim: StatsDimension, value: string): Promise<number> {
    const field = `counts.${encodeField(dim === 'year' ? value : value.trim().toLowerCase())}`
    let total = 0
    for await (const doc of counters.find({ dim }, { projection: { [field]: 1 } })) {
      total += Object.values(doc.counts ?? {}).reduce((sum, n) => sum + n, 0)
    }
    return total
  }

  /** Display spellings of a dimension's values, as `read` gives them. */
  async function labels(dim: StatsDimension): Promise<Map<string, string>> {
    const result = new Map<string, string>()
    for await (const doc of counters.find({ dim }, { projection: { labels: 1 } })) {
      for (const [field, label] of Object.entries(doc.labels ?? {})) {
        if (!result.has(field)) result.set(field, label)
      }
    }
    return result
  }

  return { ensureIndexes, apply, read, countOf, labels }
}

export type StatsCounters = ReturnType<typeof createStatsCounters>
