import { IntellisiteError } from '@intellisite/common'
import {
  type StatsDimension,
  TIMESERIES_BUCKETS,
  type TimeseriesBucket,
  type TimeseriesGroup,
  type TimeseriesQuery,
  type TimeseriesResult,
  TimeseriesWidthDroppedError,
} from './repository.js'

const MINUTE = 60_000
export const BUCKET_MS: Record<TimeseriesBucket, number> = {
  minute: MINUTE,
  hour: 60 * MINUTE,
  day: 24 * 60 * MINUTE,
}
/** Bounds the work of one request: 1,500 minutes is a day with margin, 1,500 days four years. */
export const MAX_TIMESERIES_BUCKETS = 1500
export const DEFAULT_TIMESERIES_TOP = 5

/** Epoch milliseconds floored or ceiled to a multiple of `width`. */
export const floorTo = (ms: number, width: number) => Math.floor(ms / width) * width
export const ceilTo = (ms: number, width: number) => Math.ceil(ms / width) * width

/** UTC buckets: epoch milliseconds are UTC, and every bucket width divides a day. */
export function floorToBucket(time: Date, bucket: TimeseriesBucket): Date {
  return new Date(floorTo(time.getTime(), BUCKET_MS[bucket]))
}

export function ceilToBucket(time: Date, bucket: TimeseriesBucket): Date {
  return new Date(ceilTo(time.getTime(), BUCKET_MS[bucket]))
}

/** The bucket-aligned range of a query, and how many buckets it holds. */
export function timeseriesRange(query: Pick<TimeseriesQuery, 'bucket' | 'from' | 'to'>) {
  const from = floorToBucket(query.from, query.bucket)
  const to = ceilToBucket(query.to, query.bucket)
  return { from, to, buckets: Math.max(0, (to.getTime() - from.getTime()) / BUCKET_MS[query.bucket]) }
}

/** A time-series query whose range holds no bucket, or more than a query may ask for. */
export class TimeseriesRangeError extends IntellisiteError<'INVALID_TIMESERIES_RANGE'> {
  constructor(message: string) {
    super('INVALID_TIMESERIES_RANGE', message)
  }
}

export function checkedTimeseriesRange(query: TimeseriesQuery) {
  const range = timeseriesRange(query)
  if (range.buckets < 1) throw new TimeseriesRangeError('from must be earlier than to')
  if (range.buckets > MAX_TIMESERIES_BUCKETS) {
    throw new TimeseriesRangeError(
      `the range holds ${range.buckets} ${query.bucket} buckets; at most ${MAX_TIMESERIES_BUCKETS}`,
    )
  }
  return range
}

/** Where each width's kept data starts; a width absent here is kept in full. */
export type KeptFrom = Partial<Record<TimeseriesBucket, Date>>

/** The widths whose kept data covers a range starting at `from`. */
export function availableWidths(from: Date, keptFrom: KeptFrom): TimeseriesBucket[] {
  return TIMESERIES_BUCKETS.filter((width) => {
    const kept = keptFrom[width]
    return kept === undefined || kept.getTime() <= from.getTime()
  })
}

/**
 * The widths available for a query's range; {@link TimeseriesWidthDroppedError} when its own width
 * is not among them (a range that begins where the finer counts were dropped would read as zeros).
 */
export function checkedAvailability(query: TimeseriesQuery, keptFrom: KeptFrom): TimeseriesBucket[] {
  const { from } = checkedTimeseriesRange(query)
  const available = availableWidths(from, keptFrom)
  const kept = keptFrom[query.bucket]
  if (kept !== undefined && !available.includes(query.bucket)) {
    throw new TimeseriesWidthDroppedError(query.bucket, kept, available)
  }
  return available
}

/** Sparse counts as a backend reads them: the bucket's start, and what was counted in it. */
export interface BucketCount {
  start: number
  total: number
  suspicious: number
}
export interface GroupBucketCount {
  key: string
  label: string
  start: number
  total: number
}

/**
 * Dense points (every bucket, zeros included) from sparse counts, which may hold several entries
 * per bucket (finer buckets or shards summed here), and the top groups by total over the range.
 */
export function assembleTimeseries(
  query: TimeseriesQuery,
  counts: Iterable<BucketCount>,
  groupCounts: Iterable<GroupBucketCount> = [],
  available: TimeseriesBucket[] = [...TIMESERIES_BUCKETS],
): TimeseriesResult {
  const { from, to, buckets } = checkedTimeseriesRange(query)
  const width = BUCKET_MS[query.bucket]
  const index = (start: number) => Math.floor((start - from.getTime()) / width)
  const points = Array.from({ length: buckets }, (_, i) => ({
    start: new Date(from.getTime() + i * width),
    total: 0,
    suspicious: 0,
  }))
  for (const count of counts) {
    const point = points[index(count.start)]
    if (!point) continue
    point.total += count.total
    point.suspicious += count.suspicious
  }
  const groupBy: StatsDimension | null = query.groupBy ?? null
  let groups: TimeseriesGroup[] = []
  if (groupBy !== null) {
    const byKey = new Map<string, TimeseriesGroup>()
    for (const count of groupCounts) {
      const i = index(count.start)
      if (i < 0 || i >= buckets) continue
      let group = byKey.get(count.key)
      if (!group) {
        group = { value: count.label, total: 0, counts: new Array<number>(buckets).fill(0) }
        byKey.set(count.key, group)
      }
      group.total += count.total
      group.counts[i] = (group.counts[i] ?? 0) + count.total
    }
    groups = [...byKey.values()]
      .filter((group) => group.total > 0)
      .sort((a, b) => b.total - a.total || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0))
      .slice(0, query.top ?? DEFAULT_TIMESERIES_TOP)
  }
  return { bucket: query.bucket, from, to, groupBy, available, points, groups }
}
