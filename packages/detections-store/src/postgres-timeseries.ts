import type { Pool } from 'pg'
import { keptFrom } from './postgres-partitions.js'
import { prepared } from './postgres-prepared.js'
import type { StatsDimension, TimeseriesBucket, TimeseriesQuery, TimeseriesResult } from './repository.js'
import {
  assembleTimeseries,
  BUCKET_MS,
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

export function createPostgresTimeseries(pool: Pool) {
  async function read(query: TimeseriesQuery): Promise<TimeseriesResult> {
    const { from, to } = checkedTimeseriesRange(query)
    const kept = await keptFrom(pool)
    const keptByWidth: KeptFrom = {
      ...(kept.minute && { minute: kept.minute }),
      ...(kept.hour && { hour: kept.hour }),
    }
    const available = checkedAvailability(query, keptByWidth)
    const table = TABLE[query.bucket]
    // Epoch milliseconds and float8 sums come back as JavaScript numbers: 1,440 rows cost no date
    // or numeric parsing.
    const totals = pool.query<{ start: number; total: number; suspicious: number }>(
      prepared(
        `SELECT (extract(epoch FROM start) * 1000)::float8 AS start, sum(total)::float8 AS total,
         sum(suspicious)::float8 AS suspicious
       FROM ${table} WHERE dim = '' AND value_key = '' AND start >= $1 AND start < $2
       GROUP BY start`,
        [from, to],
      ),
    )
    const dim = query.groupBy
    const groups = dim
      ? topGroups(query.bucket, dim, from, to, query.top ?? DEFAULT_TIMESERIES_TOP, available)
      : Promise.resolve([])
    const [totalRows, groupRows] = await Promise.all([totals, groups])
    return assembleTimeseries(query, totalRows.rows, groupRows, available)
  }

  /**
   * Each value's total over the range, read from the next wider width for the whole buckets of it
   * inside the range and from the query's width for the edges only: 24 h of minutes sums 24 hour
   * rows per value, not 1,440 minute rows.
   */
  async function totalsOver(
    bucket: TimeseriesBucket,
    dim: StatsDimension,
    from: Date,
    to: Date,
    available: TimeseriesBucket[],
  ): Promise<Map<string, number>> {
    const coarser = COARSER[bucket]
    const parts: { table: string; from: number; to: number }[] = []
    if (coarser && available.includes(coarser)) {
      const inner = {
        from: ceilTo(from.getTime(), BUCKET_MS[coarser]),
        to: floorTo(to.getTime(), BUCKET_MS[coarser]),
      }
      if (inner.from < inner.to) {
        parts.push({ table: TABLE[coarser], ...inner })
        if (from.getTime() < inner.from)
          parts.push({ table: TABLE[bucket], from: from.getTime(), to: inner.from })
        if (inner.to < to.getTime()) parts.push({ table: TABLE[bucket], from: inner.to, to: to.getTime() })
      }
    }
    if (parts.length === 0) parts.push({ table: TABLE[bucket], from: from.getTime(), to: to.getTime() })
    const params: unknown[] = [dim]
    const selects = parts.map((part) => {
      params.push(new Date(part.from), new Date(part.to))
      return `SELECT value_key, total FROM ${part.table}
              WHERE dim = $1 AND start >= $${params.length - 1} AND start < $${params.length}`
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
    // One row per group, its rows as a JSON array of [start, total] pairs: a few rows to parse
    // instead of thousands. A bucket may come as several pairs (its shards, while it is still
    // open); assembleTimeseries adds them up, which costs less than a GROUP BY per bucket here.
    const { rows } = await pool.query<{ key: string; points: string }>(
      prepared(
        `SELECT value_key AS key,
           json_agg(json_build_array(date_part('epoch', start) * 1000, total))::text AS points
         FROM ${TABLE[bucket]}
         WHERE dim = $1 AND start >= $2 AND start < $3 AND value_key = ANY($4)
         GROUP BY value_key`,
        [dim, from, to, chosen.map((group) => group.key)],
      ),
    )
    return rows.flatMap((row) =>
      (JSON.parse(row.points) as [number, number][]).map(([start, total]) => ({
        key: row.key,
        label: label.get(row.key) ?? row.key,
        start,
        total,
      })),
    )
  }

  return { read }
}
