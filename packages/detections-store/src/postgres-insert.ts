import type { DetectionDocument } from './detection.js'
import { copyLines, textArrayLiteral } from './postgres-copy.js'

/** Session-local, emptied at each commit: a batch's rows on their way into `detections`. */
export const STAGING_TABLE = 'detections_staging'

export const DETECTION_COLUMNS =
  'id, detected_at, year, make, model, category, make_key, model_key, category_key, category_tokens, ' +
  'suspicious, source_topic, source_partition, source_offset, source_timestamp'

/** A batch as COPY text for the staging table, in {@link DETECTION_COLUMNS} order. */
export function stagingRows(documents: readonly DetectionDocument[]): string {
  return copyLines(
    documents.map((d) => [
      d._id,
      d.detectedAt.toISOString(),
      d.year,
      d.make,
      d.model,
      d.category,
      d.makeKey,
      d.modelKey,
      d.categoryKey,
      textArrayLiteral(d.categoryTokens),
      d.suspicious,
      d.source.topic,
      d.source.partition,
      d.source.offset,
      d.source.timestamp,
    ]),
  )
}

/**
 * The slow path, for a batch that holds a row already stored (a redelivery) or the same record
 * twice: the staged rows that are not stored yet go in (`ON CONFLICT DO NOTHING`), with their
 * token rows, and come back (`RETURNING`) so that exactly those are counted.
 */
export const INSERT_NEW_FROM_STAGING = `
WITH ins AS (
  INSERT INTO detections (${DETECTION_COLUMNS})
  SELECT ${DETECTION_COLUMNS} FROM ${STAGING_TABLE}
  ON CONFLICT (detected_at, id) DO NOTHING
  RETURNING id, detected_at, category_tokens
),
token_rows AS (
  INSERT INTO detection_category_tokens (token, detected_at, id)
  SELECT DISTINCT t.token, ins.detected_at, ins.id
  FROM ins CROSS JOIN LATERAL unnest(ins.category_tokens) AS t(token)
)
SELECT id FROM ins`

const MINUTE_MS = 60_000
const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000

/** What a batch adds to the counters, summed per key in the batch (arrays for `unnest`). */
export interface BatchCounters {
  stats: { dim: string[]; key: string[]; shard: number[]; label: string[]; count: number[] }
  buckets: {
    width: string[]
    dim: string[]
    start: number[]
    key: string[]
    shard: number[]
    total: number[]
    suspicious: number[]
  }
}

type Width = 'minute' | 'hour' | 'day'
const WIDTH_MS: Record<Width, number> = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS }
/** The dimensions counted per bucket, in the order of `MinuteGroup.values`. */
const BUCKET_DIMS = ['make', 'model', 'category', 'year'] as const

/** A batch's detections of one shard in one minute: its totals and a count per dimension value. */
interface MinuteGroup {
  shard: number
  start: number
  total: number
  suspicious: number
  values: [Map<string, Count>, Map<string, Count>, Map<string, Count>, Map<string, Count>]
  tokens: Map<string, Count>
}
interface Count {
  total: number
  suspicious: number
}

function bump(map: Map<string, Count>, key: string, suspicious: boolean): void {
  const count = map.get(key)
  if (count) {
    count.total++
    if (suspicious) count.suspicious++
  } else map.set(key, { total: 1, suspicious: suspicious ? 1 : 0 })
}

/**
 * Counts a batch of detections, every one of which was inserted, into per-key sums: one row per
 * (dimension, value, shard) for the stats, per (width, dimension, start, value, shard) for the
 * buckets. Each detection is counted once, into its (shard, minute) group; hours, days and the
 * stats are then summed from those groups, so a batch of thousands costs a few map updates per
 * detection and comes down to a few thousand counter rows.
 */
export function batchCounters(documents: readonly DetectionDocument[]): BatchCounters {
  const groups = new Map<number, Map<number, MinuteGroup>>()
  /** Per dimension, the smallest display spelling of each value: the label a counter row starts with. */
  const labels = BUCKET_DIMS.map(() => new Map<string, string>())
  const label = (dim: number, key: string, spelling: string) => {
    const known = labels[dim]!.get(key)
    if (known === undefined || spelling < known) labels[dim]!.set(key, spelling)
  }
  for (const d of documents) {
    const shard = d.source.partition
    const time = d.detectedAt.getTime()
    const start = time - (((time % MINUTE_MS) + MINUTE_MS) % MINUTE_MS)
    let byStart = groups.get(shard)
    if (!byStart) {
      byStart = new Map()
      groups.set(shard, byStart)
    }
    let group = byStart.get(start)
    if (!group) {
      group = {
        shard,
        start,
        total: 0,
        suspicious: 0,
        values: [new Map(), new Map(), new Map(), new Map()],
        tokens: new Map(),
      }
      byStart.set(start, group)
    }
    const year = String(d.year)
    group.total++
    if (d.suspicious) group.suspicious++
    bump(group.values[0], d.makeKey, d.suspicious)
    bump(group.values[1], d.modelKey, d.suspicious)
    bump(group.values[2], d.categoryKey, d.suspicious)
    bump(group.values[3], year, d.suspicious)
    label(0, d.makeKey, d.make)
    label(1, d.modelKey, d.model)
    label(2, d.categoryKey, d.category)
    // A token twice in one category ("SUV, suv") is one token of the detection.
    const tokens = d.categoryTokens
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!
      if (tokens.indexOf(token) === i) bump(group.tokens, token, d.suspicious)
    }
  }

  const out: BatchCounters = {
    stats: { dim: [], key: [], shard: [], label: [], count: [] },
    buckets: { width: [], dim: [], start: [], key: [], shard: [], total: [], suspicious: [] },
  }
  const coarse = { hour: new Map<string, Count>(), day: new Map<string, Count>() }
  const stats = new Map<string, number>()
  const addBucket = (width: Width, dim: string, start: number, key: string, shard: number, count: Count) => {
    if (width === 'minute') {
      const b = out.buckets
      b.width.push(width)
      b.dim.push(dim)
      b.start.push(start)
      b.key.push(key)
      b.shard.push(shard)
      b.total.push(count.total)
      b.suspicious.push(count.suspicious)
      return
    }
    const size = WIDTH_MS[width]
    const id = `${dim}\u0000${start - (((start % size) + size) % size)}\u0000${key}\u0000${shard}`
    const sum = coarse[width].get(id)
    if (sum) {
      sum.total += count.total
      sum.suspicious += count.suspicious
    } else coarse[width].set(id, { total: count.total, suspicious: count.suspicious })
  }
  for (const byStart of groups.values()) {
    for (const group of byStart.values()) {
      const { shard, start } = group
      for (const width of ['minute', 'hour', 'day'] as const) {
        addBucket(width, '', start, '', shard, group)
        group.values.forEach((values, dim) => {
          for (const [key, count] of values) addBucket(width, BUCKET_DIMS[dim]!, start, key, shard, count)
        })
      }
      group.values.forEach((values, dim) => {
        for (const [key, count] of values) {
          const id = `${BUCKET_DIMS[dim]}\u0000${key}\u0000${shard}`
          stats.set(id, (stats.get(id) ?? 0) + count.total)
        }
      })
      for (const [token, count] of group.tokens) {
        addBucket('day', 'token', start, token, shard, count)
        const id = `token\u0000${token}\u0000${shard}`
        stats.set(id, (stats.get(id) ?? 0) + count.total)
      }
    }
  }
  for (const width of ['hour', 'day'] as const) {
    for (const [id, count] of coarse[width]) {
      const [dim, start, key, shard] = id.split('\u0000') as [string, string, string, string]
      const b = out.buckets
      b.width.push(width)
      b.dim.push(dim)
      b.start.push(Number(start))
      b.key.push(key)
      b.shard.push(Number(shard))
      b.total.push(count.total)
      b.suspicious.push(count.suspicious)
    }
  }
  for (const [id, count] of stats) {
    const [dim, key, shard] = id.split('\u0000') as [string, string, string]
    const index = BUCKET_DIMS.indexOf(dim as (typeof BUCKET_DIMS)[number])
    out.stats.dim.push(dim)
    out.stats.key.push(key)
    out.stats.shard.push(Number(shard))
    out.stats.label.push(index < 0 || dim === 'year' ? key : (labels[index]!.get(key) ?? key))
    out.stats.count.push(count)
  }
  return out
}

const upsertBuckets = (table: string, width: string) => `
${table}_rows AS (
  INSERT INTO ${table} (dim, start, value_key, shard, total, suspicious)
  SELECT dim, timestamptz 'epoch' + start * interval '1 millisecond', key, shard, total, suspicious
  FROM buckets WHERE width = '${width}'
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (dim, start, value_key, shard) DO UPDATE SET
    total = ${table}.total + excluded.total,
    suspicious = ${table}.suspicious + excluded.suspicious
)`

/** Adds a batch's {@link BatchCounters} to the stats and the three bucket tables, in key order. */
export const ADD_COUNTERS = `
WITH stats AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[])
    AS s(dim, key, shard, label, count)
),
buckets AS (
  SELECT * FROM unnest($6::text[], $7::text[], $8::bigint[], $9::text[], $10::int[], $11::bigint[],
    $12::bigint[]) AS b(width, dim, start, key, shard, total, suspicious)
),
stats_rows AS (
  INSERT INTO detection_stats (dim, value_key, shard, label, count)
  SELECT dim, key, shard, label, count FROM stats ORDER BY 1, 2, 3
  ON CONFLICT (dim, value_key, shard) DO UPDATE SET count = detection_stats.count + excluded.count
),${upsertBuckets('detection_minutes', 'minute')},${upsertBuckets('detection_hours', 'hour')},${upsertBuckets('detection_days', 'day')}
SELECT 1`

export function addCountersParams(counters: BatchCounters): unknown[] {
  const { stats, buckets } = counters
  return [
    stats.dim,
    stats.key,
    stats.shard,
    stats.label,
    stats.count,
    buckets.width,
    buckets.dim,
    buckets.start,
    buckets.key,
    buckets.shard,
    buckets.total,
    buckets.suspicious,
  ]
}

/** The token rows of a batch as COPY text for `detection_category_tokens (token, detected_at, id)`. */
export function tokenRows(documents: readonly DetectionDocument[]): string {
  const rows: string[][] = []
  for (const d of documents) {
    const at = d.detectedAt.toISOString()
    for (const token of new Set(d.categoryTokens)) rows.push([token, at, d._id])
  }
  return copyLines(rows)
}
