import type { Pool } from 'pg'
import { RUNS } from './postgres-fold.js'
import { keptFrom } from './postgres-partitions.js'
import { prepared } from './postgres-prepared.js'
import type { StatsDimension, TimeseriesBucket, TimeseriesQuery, TimeseriesResult } from './repository.js'
import {
  assembleTimeseries,
  BUCKET_MS,
  type BucketCount,
  ceilTo,
  checkedAvailability,
  checkedTimeseriesRange,
  DEFAULT_TIMESERIES_TOP,
  floorTo,
  type GroupBucketCount,
  type KeptFrom,
} from './timeseries.js'

const TABLE: Record<TimeseriesBucket, string> = {
  minute: 'detection_minutes',
  hour: 'detection_hours',
  day: 'detection_days',
}
/** The next wider width, whose counts add up to the same totals over whole buckets of it. */
const COARSER: Partial<Record<TimeseriesBucket, TimeseriesBucket>> = { minute: 'hour', hour: 'day' }

/**
 * A width's counts over `[from, to)` of one dimension (and, with `keys`, only those values), as
 * rows of (value key, start in epoch ms, totals, suspicious): a bucket row (an open bucket, or a
 * late record's) is a run of one; a run row holds the closed buckets of one hour or day, the first
 * of which may lie before `from`. Numbers as float8 come back as JavaScript numbers, with no
 * numeric parsing.
 */
function countsStatement(bucket: TimeseriesBucket, dim: string, from: Date, to: Date, keys?: string[]) {
  const values: unknown[] = [dim, from, to]
  const only = keys ? ` AND value_key = ANY($${values.push(keys)})` : ''
  const rows = `SELECT value_key AS key, (extract(epoch FROM start) * 1000)::float8 AS start,
      ARRAY[total]::float8[] AS totals, ARRAY[suspicious]::float8[] AS suspicious
    FROM ${TABLE[bucket]} WHERE dim = $1 AND start >= $2 AND start < $3${only}`
  const runs = RUNS[bucket]
  if (!runs) return prepared(rows, values)
  const runsFrom = values.push(new Date(floorTo(from.getTime(), BUCKET_MS[runs.width])))
  return prepared(
    `${rows}
    UNION ALL
    SELECT value_key, (extract(epoch FROM start) * 1000)::float8, totals::float8[], suspicious::float8[]
    FROM ${runs.table} WHERE dim = $1 AND start >= $${runsFrom} AND start < $3${only}`,
    values,
  )
}

interface CountRow {
  key: string
  start: number
  totals: number[]
  /** Absent for groups, which count totals only. */
  suspicious?: number[]
}

/** Each run's buckets, one count per bucket that counted anything. */
function* bucketsOf(rows: Iterable<CountRow>, bucket: TimeseriesBucket) {
  const width = BUCKET_MS[bucket]
  for (const row of rows) {
    for (let i = 0; i < row.totals.length; i++) {
      const total = row.totals[i]!
      if (total !== 0)
        yield { key: row.key, start: row.start + i * width, total, suspicious: row.suspicious?.[i] ?? 0 }
    }
  }
}

/** The ungrouped series' statement (a benchmark runs it alone, as the floor of the read). */
export const timeseriesTotalsStatement = (bucket: TimeseriesBucket, from: Date, to: Date) =>
  countsStatement(bucket, '', from, to)

/**
 * Each value's total over the range, as `SELECT value_key, total` parts to sum, read from the next
 * wider width for the whole buckets of it inside the range and from the query's width for the
 * edges only: 24 h of minutes sums a day or two of hour runs per value, not 1,440 minutes. `$1` is
 * the dimension; the parts' bounds are appended to `values`.
 */
function totalsOverParts(
  bucket: TimeseriesBucket,
  from: Date,
  to: Date,
  available: TimeseriesBucket[],
  values: unknown[],
): string[] {
  const coarser = COARSER[bucket]
  const parts: { bucket: TimeseriesBucket; from: number; to: number }[] = []
  if (coarser && available.includes(coarser)) {
    const inner = {
      from: ceilTo(from.getTime(), BUCKET_MS[coarser]),
      to: floorTo(to.getTime(), BUCKET_MS[coarser]),
    }
    if (inner.from < inner.to) {
      parts.push({ bucket: coarser, ...inner })
      if (from.getTime() < inner.from) parts.push({ bucket, from: from.getTime(), to: inner.from })
      if (inner.to < to.getTime()) parts.push({ bucket, from: inner.to, to: to.getTime() })
    }
  }
  if (parts.length === 0) parts.push({ bucket, from: from.getTime(), to: to.getTime() })
  return parts.flatMap((part) => {
    const a = `$${values.push(new Date(part.from))}`
    const b = `$${values.push(new Date(part.to))}`
    const rows = `SELECT value_key, total FROM ${TABLE[part.bucket]}
              WHERE dim = $1 AND start >= ${a} AND start < ${b}`
    const runs = RUNS[part.bucket]
    if (!runs) return [rows]
    const runsFrom = `$${values.push(new Date(floorTo(part.from, BUCKET_MS[runs.width])))}`
    const step = `$${values.push(`${BUCKET_MS[part.bucket] / 1000} seconds`)}::interval`
    return [
      rows,
      `SELECT r.value_key, u.total FROM ${runs.table} AS r, unnest(r.totals) WITH ORDINALITY AS u(total, i)
         WHERE r.dim = $1 AND r.start >= ${runsFrom} AND r.start < ${b}
           AND r.start + (u.i - 1) * ${step} >= ${a} AND r.start + (u.i - 1) * ${step} < ${b}`,
    ]
  })
}

/**
 * The top groups by total over the range (ties by display spelling) and their counts, in one
 * statement: the ranking, then the chosen groups' open rows and runs, each with its label.
 */
function topGroupsStatement(
  bucket: TimeseriesBucket,
  dim: StatsDimension,
  from: Date,
  to: Date,
  top: number,
  available: TimeseriesBucket[],
) {
  const values: unknown[] = [dim]
  const parts = totalsOverParts(bucket, from, to, available, values)
  const [fromAt, toAt, topAt] = [values.push(from), values.push(to), values.push(top)]
  const select = (table: string, totals: string, startFrom: number) =>
    `SELECT c.key, c.label, (extract(epoch FROM b.start) * 1000)::float8 AS start, ${totals} AS totals
     FROM chosen AS c JOIN ${table} AS b ON b.dim = $1 AND b.value_key = c.key
       AND b.start >= $${startFrom} AND b.start < $${toAt}`
  const runs = RUNS[bucket]
  const runsFrom = runs ? values.push(new Date(floorTo(from.getTime(), BUCKET_MS[runs.width]))) : 0
  return prepared(
    `WITH totals AS (
       SELECT value_key AS key, sum(total) AS total FROM (${parts.join(' UNION ALL ')}) AS p GROUP BY value_key
     ),
     chosen AS (
       SELECT t.key, coalesce(l.label, t.key) AS label FROM totals AS t
       LEFT JOIN (SELECT value_key, min(label) AS label FROM detection_stats WHERE dim = $1 GROUP BY value_key)
         AS l ON l.value_key = t.key
       WHERE t.total > 0
       ORDER BY t.total DESC, coalesce(l.label, t.key) COLLATE "C"
       LIMIT $${topAt}
     )
     ${select(TABLE[bucket], 'ARRAY[b.total]::float8[]', fromAt)}
     ${runs ? `UNION ALL ${select(runs.table, 'b.totals::float8[]', runsFrom)}` : ''}`,
    values,
  )
}

export function createPostgresTimeseries(pool: Pool) {
  async function read(query: TimeseriesQuery): Promise<TimeseriesResult> {
    const { from, to } = checkedTimeseriesRange(query)
    // The ungrouped counts (the value '' of the dimension '') do not depend on retention: asked
    // at once. Awaited below; a range that retention refuses must not leave it unhandled.
    const totals = pool.query<CountRow>(timeseriesTotalsStatement(query.bucket, from, to))
    totals.catch(() => {})
    const kept = await keptFrom(pool)
    const keptByWidth: KeptFrom = {
      ...(kept.minute && { minute: kept.minute }),
      ...(kept.hour && { hour: kept.hour }),
    }
    const available = checkedAvailability(query, keptByWidth)
    const dim = query.groupBy
    const groups = dim
      ? pool.query<CountRow & { label: string }>(
          topGroupsStatement(query.bucket, dim, from, to, query.top ?? DEFAULT_TIMESERIES_TOP, available),
        )
      : undefined
    const [totalRows, groupRows] = await Promise.all([totals, groups])
    const counts: BucketCount[] = [...bucketsOf(totalRows.rows, query.bucket)]
    // A bucket may come as several counts (its shards, or a late row beside its run), which
    // assembleTimeseries adds up.
    const label = new Map(groupRows?.rows.map((row) => [row.key, row.label]))
    const groupCounts: GroupBucketCount[] = [...bucketsOf(groupRows?.rows ?? [], query.bucket)].map(
      ({ key, start, total }) => ({ key, label: label.get(key) ?? key, start, total }),
    )
    return assembleTimeseries(query, counts, groupCounts, available)
  }

  return { read }
}
