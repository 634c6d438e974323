import { IntellisiteError } from '@intellisite/common'
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
  /** The widths still kept for the whole range (finer ones are dropped by retention as they age). */
  available: TimeseriesBucket[]
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
  /**
   * Housekeeping that one process runs at a time, on start and on a timer: days of storage created
   * ahead of time, and whatever the policy no longer keeps removed. Safe to call from several
   * processes at once (the others skip).
   */
  maintain(policy: RetentionPolicy, now?: Date): Promise<MaintenanceResult>
}

/** How long each kind of data is kept; null keeps it for ever. */
export interface RetentionPolicy {
  /** Detections (and, on PostgreSQL, their token rows), by `detectedAt`. */
  detectionsMs: number | null
  /** Minute buckets of the time series. */
  minuteBucketsMs: number | null
  /** Hour buckets of the time series. Day buckets are kept for ever. */
  hourBucketsMs: number | null
}

export const KEEP_EVERYTHING: RetentionPolicy = {
  detectionsMs: null,
  minuteBucketsMs: null,
  hourBucketsMs: null,
}

export interface MaintenanceResult {
  /** False when another process held the maintenance lock; nothing was done. */
  ran: boolean
  /** What was removed, e.g. `detections_p20261101` (PostgreSQL partitions). */
  dropped: string[]
}

/** A time-series range that needs a width retention has already dropped for part of it. */
export class TimeseriesWidthDroppedError extends IntellisiteError<'TIMESERIES_WIDTH_DROPPED'> {
  constructor(
    readonly bucket: TimeseriesBucket,
    readonly keptFrom: Date,
    readonly available: TimeseriesBucket[],
  ) {
    super(
      'TIMESERIES_WIDTH_DROPPED',
      `${bucket} buckets are kept from ${keptFrom.toISOString()} on and this range starts earlier; ` +
        `widths available for it: ${available.join(', ')}`,
    )
  }
}

/** A list cursor that this store did not issue (or that was altered on the way back). */
export class InvalidCursorError extends IntellisiteError<'INVALID_CURSOR'> {
  constructor(cause?: unknown) {
    super('INVALID_CURSOR', 'cursor is malformed or was not issued by this API', { cause })
  }
}
