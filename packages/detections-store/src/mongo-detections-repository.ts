import type { Collection, Db, Filter, MongoBulkWriteError } from 'mongodb'
import { cursorPosition, pageOf } from './cursor.js'
import { type DetectionDocument, normalizeKey, toDetection } from './detection.js'
import { createMongoRetention } from './mongo-retention.js'
import { createStatsCounters } from './mongo-stats-counters.js'
import { createTimeseriesCounters } from './mongo-timeseries-counters.js'
import type {
  DetectionFilters,
  DetectionsRepository,
  InsertResult,
  ListQuery,
  ListResult,
  MaintenanceResult,
  RetentionPolicy,
  StatsDimension,
  StatsResult,
  TimeseriesQuery,
  TimeseriesResult,
} from './repository.js'

const NEWEST_FIRST = { detectedAt: -1, _id: -1 } as const

/** Where the detections themselves are, in the store's database (tools read it directly). */
export const DETECTIONS_COLLECTION = 'detections'

export function createMongoDetectionsRepository(
  db: Db,
  options: { collection?: string; counters?: string; buckets?: string } = {},
): DetectionsRepository {
  const detections: Collection<DetectionDocument> = db.collection<DetectionDocument>(
    options.collection ?? DETECTIONS_COLLECTION,
  )
  const stats = createStatsCounters(db, options.counters)
  const buckets = createTimeseriesCounters(db, stats, options.buckets)

  async function ensureIndexes(): Promise<void> {
    // Each filter has its own index ending in the paging order, so a filtered page is an index
    // walk, not a sort.
    // One index per command: FerretDB 1.24 drops the connection when a multi-index createIndexes
    // names indexes that all exist already, i.e. on every restart after the first.
    for (const index of [
      { key: NEWEST_FIRST, name: 'newest_first' },
      { key: { makeKey: 1, ...NEWEST_FIRST }, name: 'make_newest_first' },
      { key: { modelKey: 1, ...NEWEST_FIRST }, name: 'model_newest_first' },
      { key: { categoryTokens: 1, ...NEWEST_FIRST }, name: 'category_newest_first' },
      { key: { year: 1, ...NEWEST_FIRST }, name: 'year_newest_first' },
    ]) {
      await detections.createIndexes([index])
    }
    await stats.ensureIndexes()
    await buckets.ensureIndexes()
  }

  /**
   * Idempotent bulk insert: unordered, and a duplicate id (a redelivered record) is success. Then
   * the batch is counted into the stats and the time series exactly once. Any other write error is thrown so the caller
   * retries the whole batch, which is safe for the same reason.
   */
  async function insertBatch(documents: readonly DetectionDocument[]): Promise<InsertResult> {
    if (documents.length === 0) return { inserted: 0, duplicates: 0 }
    const duplicateIndexes = new Set<number>()
    try {
      await detections.insertMany(documents as DetectionDocument[], { ordered: false })
    } catch (err) {
      const writeErrors = (err as MongoBulkWriteError).writeErrors
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : []
      if (list.length === 0 || list.some((e) => e.code !== 11000)) throw err
      for (const e of list) duplicateIndexes.add(e.index)
    }
    const fresh = new Set<string>()
    documents.forEach((document, index) => {
      if (!duplicateIndexes.has(index)) fresh.add(document._id)
    })
    await Promise.all([stats.apply(documents, fresh), buckets.apply(documents, fresh)])
    return { inserted: fresh.size, duplicates: duplicateIndexes.size }
  }

  function toFilter(filters: DetectionFilters = {}): Filter<DetectionDocument> {
    const filter: Filter<DetectionDocument> = {}
    if (filters.make !== undefined) filter.makeKey = normalizeKey(filters.make)
    if (filters.model !== undefined) filter.modelKey = normalizeKey(filters.model)
    if (filters.category !== undefined) filter.categoryTokens = normalizeKey(filters.category)
    if (filters.year !== undefined) filter.year = filters.year
    if (filters.from !== undefined || filters.to !== undefined) {
      filter.detectedAt = {
        ...(filters.from !== undefined && { $gte: filters.from }),
        ...(filters.to !== undefined && { $lt: filters.to }),
      }
    }
    return filter
  }

  async function list(query: ListQuery): Promise<ListResult> {
    const filter = toFilter(query.filters)
    let skip = query.skip ?? 0
    if (query.cursor !== undefined) {
      const position = cursorPosition(query.cursor)
      const after: Filter<DetectionDocument> = {
        $or: [
          { detectedAt: { $lt: position.detectedAt } },
          { detectedAt: position.detectedAt, _id: { $lt: position.id } },
        ],
      }
      Object.assign(filter, Object.keys(filter).length === 0 ? after : { $and: [{ ...filter }, after] })
      skip = 0
    }
    // One extra row tells whether a next page exists without a count.
    const rows = await detections
      .find(filter)
      .sort(NEWEST_FIRST)
      .skip(skip) // MongoDB cursor offset for skip/limit paging (not a skipped test)
      .limit(query.limit + 1)
      .toArray()
    return pageOf(rows, query.limit, toDetection, (row) => ({ detectedAt: row.detectedAt, id: row._id }))
  }

  /**
   * Exact total for a filter. Unfiltered and single make/model/category-free counts come from the
   * stats counters (no collection scan); other filters count through their index.
   */
  async function count(filters: DetectionFilters = {}): Promise<number> {
    const keys = Object.entries(filters)
      .filter(([, v]) => v !== undefined)
      .map(([k]) => k)
    if (keys.length === 0) return (await stats.read('make')).total
    if (keys.length === 1 && (keys[0] === 'make' || keys[0] === 'model' || keys[0] === 'year')) {
      const dim = keys[0] as StatsDimension
      return stats.countOf(dim, String(filters[dim as 'make' | 'model' | 'year']))
    }
    return detections.countDocuments(toFilter(filters))
  }

  async function statsBy(dim: StatsDimension): Promise<StatsResult> {
    return stats.read(dim)
  }

  async function timeseries(query: TimeseriesQuery): Promise<TimeseriesResult> {
    return buckets.read(query)
  }

  async function ping(): Promise<void> {
    await db.command({ ping: 1 })
  }

  const retention = createMongoRetention(db, detections)
  async function maintain(policy: RetentionPolicy, now = new Date()): Promise<MaintenanceResult> {
    return retention.apply(policy, now)
  }

  return {
    ensureIndexes,
    insertBatch,
    list,
    count,
    stats: statsBy,
    timeseries,
    ping,
    maintain,
  }
}
