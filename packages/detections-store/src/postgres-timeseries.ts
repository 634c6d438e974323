import type { Pool } from 'pg'
import { RUNS } from './postgres-fold.js'
import { keptFrom } from './postgres-partitions.js'
import { prepared } from './postgres-prepared.js'
import type { StatsDimension, TimeseriesBucket, TimeseriesQuery, TimeseriesResult } from './repository.js'
import {
  assembleTimeseries,
  BUCKET_MS,
  type BucketCount,
  checkedAvailability,
  checkedTimeseriesRange,
  DEFAULT_TIMESERIES_TOP,
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

const floorTo = (ms: number, width: number) => Math.floor(ms / width) * width
const ceilTo = (ms: number, width: number) => Math.ceil(ms / width) * width

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
  suspicious: number[]
}

/** Each run's buckets, one count per bucket that counted anything. */
function* bucketsOf(rows: Iterable<CountRow>, bucket: TimeseriesBucket) {
  const width = BUCKET_MS[bucket]
  for (const row of rows) {
    for (let i = 0; i < row.totals.length; i++) {
      const total = row.totals[i]!
      if (total !== 0)
        yield { key: row.key, start: row.start + i * width, total, suspicious: row.suspicious[i]! }
    }
  }
}

/** The ungrouped series' statement (a benchmark runs it alone, as the floor of the read). */
export const timeseriesTotalsStatement = (bucket: TimeseriesBucket, from: Date, to: Date) =>
  countsStatement(bucket, '', from, to)

export function createPostgresTimeseries(pool: Pool) {
  async function read(query: TimeseriesQuery): Promise<TimeseriesResult> {
    const { from, to } = checkedTimeseriesRange(query)
    const kept = await keptFrom(pool)
    const keptByWidth: KeptFrom = {
      ...(kept.minute && { minute: kept.minute }),
      ...(kept.hour && { hour: kept.hour }),
    }
    const available = checkedAvailability(query, keptByWidth)
    // The ungrouped counts are the value '' of the dimension ''.
    const totals = pool.query<CountRow>(timeseriesTotalsStatement(query.bucket, from, to))
    const dim = query.groupBy
    const groups = dim
      ? topGroups(query.bucket, dim, from, to, query.top ?? DEFAULT_TIMESERIES_TOP, available)
      : Promise.resolve([])
    const [totalRows, groupRows] = await Promise.all([totals, groups])
    const counts: BucketCount[] = [...bucketsOf(totalRows.rows, query.bucket)]
    return assembleTimeseries(query, counts, groupRows, available)
  }

  /**
   * Each value's total over the range, read from the next wider width for the whole buckets of it
   * inside the range and from the query's width for the edges only: 24 h of minutes sums a day or
   * two of hour runs per value, not 1,440 minutes.
   */
  async function totalsOver(
    bucket: TimeseriesBucket,
    dim: StatsDimension,
    from: Date,
    to: Date,
    available: TimeseriesBucket[],
  ): Promise<Map<string, number>> {
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
    const params: unknown[] = [dim]
    const selects = parts.flatMap((part) => {
      params.push(new Date(part.from), new Date(part.to))
      const [a, b] = [`$${params.length - 1}`, `$${params.length}`]
      const rows = `SELECT value_key, total FROM ${TABLE[part.bucket]}
              WHERE dim = $1 AND start >= ${a} AND start < ${b}`
      const runs = RUNS[part.bucket]
      if (!runs) return [rows]
      params.push(
        new Date(floorTo(part.from, BUCKET_MS[runs.width])),
        `${BUCKET_MS[part.bucket] / 1000} seconds`,
      )
      const [runsFrom, step] = [`$${params.length - 1}`, `$${params.length}::interval`]
      return [
        rows,
        `SELECT r.value_key, u.total FROM ${runs.table} AS r, unnest(r.totals) WITH ORDINALITY AS u(total, i)
         WHERE r.dim = $1 AND r.start >= ${runsFrom} AND r.start < ${b}
           AND r.start + (u.i - 1) * ${step} >= ${a} AND r.start + (u.i - 1) * ${step} < ${b}`,
      ]
    })
    const { rows } = await pool.query<{ key: string; total: number }>(
      prepared(
        `SELECT value_key AS key, sum(total)::float8 AS total FROM (${selects.join(' UNION ALL ')}) AS p
         GROUP BY value_key`,
        params,
      ),
    )
    return new Map(rows.map((row) => [row.key, row.total]))
  }

  /** The top groups by total over the range (ties by display spelling), then their buckets. */
  async function topGroups(
    bucket: TimeseriesBucket,
    dim: StatsDimension,
    from: Date,
    to: Date,
    top: number,
    available: TimeseriesBucket[],
  ): Promise<GroupBucketCount[]> {
    const [totals, labels] = await Promise.all([
      totalsOver(bucket, dim, from, to, available),
      pool.query<{ key: string; label: string }>(
        'SELECT value_key AS key, min(label) AS label FROM detection_stats WHERE dim = $1 GROUP BY value_key',
        [dim],
      ),
    ])
    const label = new Map(labels.rows.map((row) => [row.key, row.label]))
    const chosen = [...totals]
      .map(([key, total]) => ({ key, label: label.get(key) ?? key, total }))
      .filter((group) => group.total > 0)
      .sort((a, b) => b.total - a.total || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
      .slice(0, top)
    if (chosen.length === 0) return []
    // The chosen groups' runs (an hour's minutes or a day's hours a row) and open buckets; a bucket
    // may come as several counts (its shards, or a late record's row beside its run), which
    // assembleTimeseries adds up.
    const keys = chosen.map((group) => group.key)
    const { rows } = await pool.query<CountRow>(countsStatement(bucket, dim, from, to, keys))
    return [...bucketsOf(rows, bucket)].map(({ key, start, total }) => ({
      key,
      label: label.get(key) ?? key,
      start,
      total,
    }))
  }

  return { read }
}
