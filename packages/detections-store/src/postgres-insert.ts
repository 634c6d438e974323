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

/**
 * Counts a batch of detections, every one of which was inserted, into per-key sums: one row per
 * (dimension, value, shard) for the stats, per (width, dimension, start, value, shard) for the
 * buckets. A batch of a few thousand detections comes down to a few hundred counter rows.
 */
export function batchCounters(documents: readonly DetectionDocument[]): BatchCounters {
  const stats = new Map<string, { dim: string; key: string; shard: number; label: string; count: number }>()
  const buckets = new Map<
    string,
    {
      width: string
      dim: string
      start: number
      key: string
      shard: number
      total: number
      suspicious: number
    }
  >()
  const stat = (dim: string, key: string, shard: number, label: string) => {
    const id = `${dim}\u0000${key}\u0000${shard}`
    const row = stats.get(id)
    if (!row) stats.set(id, { dim, key, shard, label, count: 1 })
    else {
      row.count++
      // The smallest spelling, whatever the batch order: the label a counter row starts with.
      if (label < row.label) row.label = label
    }
  }
  const bucket = (
    width: string,
    start: number,
    dim: string,
    key: string,
    shard: number,
    suspicious: boolean,
  ) => {
    const id = `${width}\u0000${start}\u0000${dim}\u0000${key}\u0000${shard}`
    const row = buckets.get(id)
    if (row) {
      row.total++
      if (suspicious) row.suspicious++
    } else buckets.set(id, { width, dim, start, key, shard, total: 1, suspicious: suspicious ? 1 : 0 })
  }
  for (const d of documents) {
    const shard = d.source.partition
    const year = String(d.year)
    stat('make', d.makeKey, shard, d.make)
    stat('model', d.modelKey, shard, d.model)
    stat('category', d.categoryKey, shard, d.category)
    stat('year', year, shard, year)
    const time = d.detectedAt.getTime()
    const day = time - (((time % DAY_MS) + DAY_MS) % DAY_MS)
    // A token twice in one category ("SUV, suv") is one token of the detection.
    const tokens = new Set(d.categoryTokens)
    for (const token of tokens) {
      stat('token', token, shard, token)
      bucket('day', day, 'token', token, shard, d.suspicious)
    }
    for (const [width, size] of [
      ['minute', MINUTE_MS],
      ['hour', HOUR_MS],
      ['day', DAY_MS],
    ] as const) {
      const start = time - (((time % size) + size) % size)
      bucket(width, start, '', '', shard, d.suspicious)
      bucket(width, start, 'make', d.makeKey, shard, d.suspicious)
      bucket(width, start, 'model', d.modelKey, shard, d.suspicious)
      bucket(width, start, 'category', d.categoryKey, shard, d.suspicious)
      bucket(width, start, 'year', year, shard, d.suspicious)
    }
  }
  const out: BatchCounters = {
    stats: { dim: [], key: [], shard: [], label: [], count: [] },
    buckets: { width: [], dim: [], start: [], key: [], shard: [], total: [], suspicious: [] },
  }
  for (const row of stats.values()) {
    out.stats.dim.push(row.dim)
    out.stats.key.push(row.key)
    out.stats.shard.push(row.shard)
    out.stats.label.push(row.label)
    out.stats.count.push(row.count)
  }
  for (const row of buckets.values()) {
    out.buckets.width.push(row.width)
    out.buckets.dim.push(row.dim)
    out.buckets.start.push(row.start)
    out.buckets.key.push(row.key)
    out.buckets.shard.push(row.shard)
    out.buckets.total.push(row.total)
    out.buckets.suspicious.push(row.suspicious)
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
