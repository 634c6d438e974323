import type { Collection, Db } from 'mongodb'
import type { DetectionDocument } from './detection.js'

export const STATS_DIMENSIONS = ['make', 'model', 'category', 'year'] as const
export type StatsDimension = (typeof STATS_DIMENSIONS)[number]

export interface StatsItem {
  value: string
  count: number
}
export interface StatsResult {
  total: number
  items: StatsItem[]
}

/**
 * One document per (dimension, topic, partition): `counts` maps a case-folded value to how many
 * detections of that partition with offset <= `through` have it; `labels` keeps a display spelling.
 *
 * Why this shape: `GET /stats` must stay exact and cheap at tens of millions of detections, and
 * MongoDB-protocol servers without multi-document transactions (FerretDB) cannot update a counter
 * and mark detections counted atomically. Keeping the watermark (`through`) in the same document
 * as the counts makes each update a single-document compare-and-set, so redelivery of a batch
 * never counts twice, whatever the batch boundaries are. Reading stats touches
 * 4 × partitions documents, not the detections.
 */
interface CounterDocument {
  _id: string
  dim: StatsDimension
  topic: string
  partition: number
  through: number
  /** Newest record timestamp counted: tells a re-created topic from a late writer. */
  throughTimestamp: number
  counts: Record<string, number>
  labels: Record<string, string>
}

const MAX_CAS_ATTEMPTS = 10

/** Field names may not contain `.` or start with `$`; escape them reversibly. */
export function encodeField(key: string): string {
  return key.replaceAll('%', '%25').replaceAll('.', '%2E').replaceAll('$', '%24')
}
export function decodeField(field: string): string {
  return field.replaceAll('%24', '$').replaceAll('%2E', '.').replaceAll('%25', '%')
}

function dimensionValue(document: DetectionDocument, dim: StatsDimension): { key: string; label: string } {
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

  /**
   * Counts a batch that has just been inserted. `fresh` holds the ids this batch inserted (not
   * duplicates). Batches of a partition start at its committed offset, and everything below that
   * was counted before the commit, so "offset above the watermark" is exactly "not yet counted".
   * The one exception is a deleted and re-created topic, whose offsets restart at 0: a fresh
   * detection at or below the watermark that is also newer than anything counted can only be that,
   * so it is counted and the watermark restarts.
   */
  async function apply(documents: readonly DetectionDocument[], fresh: ReadonlySet<string>): Promise<void> {
    const byPartition = new Map<string, DetectionDocument[]>()
    for (const document of documents) {
      const key = `${document.source.topic}\u0000${document.source.partition}`
      const group = byPartition.get(key)
      if (group) group.push(document)
      else byPartition.set(key, [document])
    }
    const work: Promise<void>[] = []
    for (const group of byPartition.values()) {
      for (const dim of STATS_DIMENSIONS) work.push(applyPartition(dim, group, fresh))
    }
    await Promise.all(work)
  }

  async function applyPartition(
    dim: StatsDimension,
    group: readonly DetectionDocument[],
    fresh: ReadonlySet<string>,
  ): Promise<void> {
    const first = group[0]
    if (!first) return
    const { topic, partition } = first.source
    const _id = `${dim}\u0000${topic}\u0000${partition}`
    const batchMax = Math.max(...group.map((d) => d.source.offset))
    const batchMaxTimestamp = Math.max(...group.map((d) => d.source.timestamp))
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      const current = await counters.findOne({ _id }, { projection: { through: 1, throughTimestamp: 1 } })
      if (!current) {
        // Create the empty counter first so every update below is a compare-and-set on `through`.
        await counters
          .insertOne({
            _id,
            dim,
            topic,
            partition,
            through: -1,
            throughTimestamp: -1,
            counts: {},
            labels: {},
          })
          .catch((err: unknown) => {
            if ((err as { code?: unknown }).code !== 11000) throw err
          })
        continue
      }
      const { through, throughTimestamp } = current
      // A retry after losing the race to another writer counts only what is above the new
      // watermark: the other writer has counted the rest, fresh or not.
      const recreated =
        attempt === 1 &&
        group.some(
          (d) => d.source.offset <= through && d.source.timestamp > throughTimestamp && fresh.has(d._id),
        )
      const inc: Record<string, number> = {}
      const set: Record<string, unknown> = {}
      for (const document of group) {
        const counted = recreated ? fresh.has(document._id) : document.source.offset > through
        if (!counted) continue
        const { key, label } = dimensionValue(document, dim)
        const field = encodeField(key)
        inc[`counts.${field}`] = (inc[`counts.${field}`] ?? 0) + 1
        set[`labels.${field}`] = label
      }
      const nextThrough = recreated ? batchMax : Math.max(through, batchMax)
      const nextTimestamp = recreated ? batchMaxTimestamp : Math.max(throughTimestamp, batchMaxTimestamp)
      if (Object.keys(inc).length === 0 && nextThrough === through) return
      set.through = nextThrough
      set.throughTimestamp = nextTimestamp
      const update = Object.keys(inc).length > 0 ? { $inc: inc, $set: set } : { $set: set }
      const result = await counters.updateOne({ _id, through }, update)
      if (result.matchedCount === 1) return
    }
    throw new Error(`stats counter ${dim}/${topic}/${partition}: too much contention`)
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

  return { ensureIndexes, apply, read, countOf }
}

export type StatsCounters = ReturnType<typeof createStatsCounters>
