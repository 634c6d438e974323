import type { Detection, DetectionDocument } from './detection.js'

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

export interface DetectionFilters {
  /** Case-insensitive exact make, e.g. `mazda` matches `MAZDA`. */
  make?: string
  model?: string
  /** Matches any token of a compound category: `suv` matches `"SUV, Pickup"`. */
  category?: string
  year?: number
  /** Inclusive lower bound on `detectedAt`. */
  from?: Date
  /** Exclusive upper bound on `detectedAt`. */
  to?: Date
}

export interface ListQuery {
  limit: number
  /** Offset paging; cost grows with depth. Ignored when `cursor` is given. */
  skip?: number
  /** Keyset paging from a previous page's `nextCursor`; constant cost at any depth. */
  cursor?: string
  filters?: DetectionFilters
}

export interface ListResult {
  items: Detection[]
  /** Cursor for the page after this one, or null at the end. */
  nextCursor: string | null
}

export interface InsertResult {
  inserted: number
  duplicates: number
}

export const TIMESERIES_BUCKETS = ['minute', 'hour', 'day'] as const
export type TimeseriesBucket = (typeof TIMESERIES_BUCKETS)[number]

export interface TimeseriesQuery {
  bucket: TimeseriesBucket
  /** Floored to the bucket. */
  from: Date
  /** Ceiled to the bucket; exclusive. */
  to: Date
  groupBy?: StatsDimension
  /** How many groups (largest total over the range first); default 5. */
  top?: number
}

export interface TimeseriesPoint {
  start: Date
  total: number
  suspicious: number
}

export interface TimeseriesGroup {
  /** Display spelling, as `stats()` gives it. */
  value: string
  total: number
  /** One count per point, in the same order. */
  counts: number[]
}

export interface TimeseriesResult {
  bucket: TimeseriesBucket
  from: Date
  to: Date
  groupBy: StatsDimension | null
  /** Every bucket of [from, to), oldest first, zeros included. */
  points: TimeseriesPoint[]
  groups: TimeseriesGroup[]
}

/**
 * What the indexer and the API need from a detections store, whichever backend holds it. Both
 * backends give the same answers to the same calls (one contract test suite runs against both).
 */
export interface DetectionsRepository {
  /** Creates or migrates the schema and indexes; idempotent, safe from several processes at once. */
  ensureIndexes(): Promise<void>
  /**
   * Idempotent by detection id: a redelivered detection is a duplicate, not an error, and the stats
   * and time series count each detection exactly once. Any other failure throws; retrying the
   * whole batch is safe.
   */
  insertBatch(documents: readonly DetectionDocument[]): Promise<InsertResult>
  /** Newest first (`detectedAt` desc, id desc). Throws `InvalidCursorError` on a bad cursor. */
  list(query: ListQuery): Promise<ListResult>
  /** Exact number of detections matching the filters. */
  count(filters?: DetectionFilters): Promise<number>
  /** Count per value, case-insensitively grouped, count desc then value asc. */
  stats(dimension: StatsDimension): Promise<StatsResult>
  timeseries(query: TimeseriesQuery): Promise<TimeseriesResult>
  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void>
}

export class InvalidCursorError extends Error {
  readonly code = 'INVALID_CURSOR'
  constructor(cause?: unknown) {
    super('cursor is malformed or was not issued by this API', { cause })
  }
}
