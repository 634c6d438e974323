import type { Pool } from 'pg'
import { cursorPosition, pageOf } from './cursor.js'
import { type Detection, type DetectionDocument, normalizeKey } from './detection.js'
import { migrateDetectionsSchema } from './postgres-migrate.js'
import type {
  DetectionFilters,
  DetectionsRepository,
  InsertResult,
  ListQuery,
  ListResult,
  StatsDimension,
  StatsResult,
  TimeseriesQuery,
  TimeseriesResult,
} from './repository.js'
import { assembleTimeseries, checkedTimeseriesRange, DEFAULT_TIMESERIES_TOP } from './timeseries.js'

/**
 * The whole batch in ONE statement, hence one transaction: the detections that were not there yet
 * (`ON CONFLICT DO NOTHING RETURNING`), their category tokens, the stats and the time-series
 * buckets counted from exactly those rows. A redelivered batch inserts nothing and counts nothing,
 * so the counters need no watermark. Counter rows are upserted in key order, so concurrent batches
 * lock shared rows in the same order.
 */
const INSERT_BATCH = `
WITH input AS (
  SELECT * FROM unnest(
    $1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::bool[], $12::text[], $13::int[], $14::bigint[]
  ) AS i(id, ts, year, make, model, category, make_key, model_key, category_key, tokens, suspicious,
         topic, part, off)
),
ins AS (
  INSERT INTO detections (id, detected_at, year, make, model, category, make_key, model_key,
    category_key, category_tokens, suspicious, source_topic, source_partition, source_offset,
    source_timestamp)
  SELECT id, timestamptz 'epoch' + ts * interval '1 millisecond', year, make, model, category,
    make_key, model_key, category_key, string_to_array(tokens, ','), suspicious, topic, part, off, ts
  FROM input
  ON CONFLICT (id) DO NOTHING
  RETURNING id, detected_at, year, make, model, category, make_key, model_key, category_key,
    category_tokens, suspicious, source_partition AS shard
),
tokens AS (
  SELECT DISTINCT ins.id, ins.detected_at, ins.shard, t.token
  FROM ins CROSS JOIN LATERAL unnest(ins.category_tokens) AS t(token)
),
token_rows AS (
  INSERT INTO detection_category_tokens (token, detected_at, id)
  SELECT token, detected_at, id FROM tokens
),
stats_rows AS (
  INSERT INTO detection_stats (dim, value_key, shard, label, count)
  SELECT dim, value_key, shard, min(label), count(*) FROM (
    SELECT v.dim, v.value_key, ins.shard, v.label
    FROM ins CROSS JOIN LATERAL (VALUES
      ('make', ins.make_key, ins.make),
      ('model', ins.model_key, ins.model),
      ('category', ins.category_key, ins.category),
      ('year', ins.year::text, ins.year::text)
    ) AS v(dim, value_key, label)
    UNION ALL
    SELECT 'token', token, shard, token FROM tokens
  ) AS counted
  GROUP BY dim, value_key, shard
  ORDER BY dim, value_key, shard
  ON CONFLICT (dim, value_key, shard) DO UPDATE SET count = detection_stats.count + excluded.count
),
bucket_rows AS (
  INSERT INTO detection_buckets (width, dim, start, value_key, shard, total, suspicious)
  SELECT w.width, v.dim, date_trunc(w.width, ins.detected_at, 'UTC'), v.value_key, ins.shard,
    count(*), count(*) FILTER (WHERE ins.suspicious)
  FROM ins
  CROSS JOIN (VALUES ('minute'), ('hour')) AS w(width)
  CROSS JOIN LATERAL (VALUES
    ('', ''), ('make', ins.make_key), ('model', ins.model_key), ('category', ins.category_key),
    ('year', ins.year::text)
  ) AS v(dim, value_key)
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (width, dim, start, value_key, shard) DO UPDATE SET
    total = detection_buckets.total + excluded.total,
    suspicious = detection_buckets.suspicious + excluded.suspicious
)
SELECT count(*)::int AS inserted FROM ins`

const DETECTION_COLUMNS = 'd.id, d.detected_at, d.year, d.make, d.model, d.category, d.suspicious'

interface DetectionRow {
  id: string
  detected_at: Date
  year: number
  make: string
  model: string
  category: string
  suspicious: boolean
}

function toDetection(row: DetectionRow): Detection {
  return {
    id: row.id,
    year: row.year,
    make: row.make,
    model: row.model,
    category: row.category,
    detectedAt: row.detected_at,
    suspicious: row.suspicious,
  }
}

/** Deadlocks between concurrent batches are rare (key-ordered upserts) but retried here at once. */
const DEADLOCK = '40P01'

/**
 * FROM and WHERE for a filter. A category token drives the query from its own newest-first index
 * (the token table), every other filter from the detections' index for it; either way the
 * ORDER BY below follows an index, so a page reads about `limit` rows at any depth.
 */
function selection(filters: DetectionFilters, params: unknown[]) {
  const where: string[] = []
  const param = (value: unknown) => {
    params.push(value)
    return `$${params.length}`
  }
  const byToken = filters.category !== undefined
  const order = byToken ? 't' : 'd'
  const from = byToken ? 'detection_category_tokens t JOIN detections d ON d.id = t.id' : 'detections d'
  if (filters.category !== undefined) where.push(`t.token = ${param(normalizeKey(filters.category))}`)
  if (filters.make !== undefined) where.push(`d.make_key = ${param(normalizeKey(filters.make))}`)
  if (filters.model !== undefined) where.push(`d.model_key = ${param(normalizeKey(filters.model))}`)
  if (filters.year !== undefined) where.push(`d.year = ${param(filters.year)}`)
  if (filters.from !== undefined) where.push(`${order}.detected_at >= ${param(filters.from)}`)
  if (filters.to !== undefined) where.push(`${order}.detected_at < ${param(filters.to)}`)
  return { from, where, order, param }
}

export function createPostgresDetectionsRepository(pool: Pool): DetectionsRepository {
  async function ensureIndexes(): Promise<void> {
    await migrateDetectionsSchema(pool)
  }

  async function insertBatch(documents: readonly DetectionDocument[]): Promise<InsertResult> {
    if (documents.length === 0) return { inserted: 0, duplicates: 0 }
    const columns: unknown[][] = Array.from({ length: 14 }, () => new Array(documents.length))
    documents.forEach((d, i) => {
      const row = [
        d._id,
        d.detectedAt.getTime(),
        d.year,
        d.make,
        d.model,
        d.category,
        d.makeKey,
        d.modelKey,
        d.categoryKey,
        // Tokens come from splitting on `,`, so they cannot contain one.
        d.categoryTokens.join(','),
        d.suspicious,
        d.source.topic,
        d.source.partition,
        d.source.offset,
      ]
      for (let c = 0; c < row.length; c++) columns[c]![i] = row[c]
    })
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await pool.query<{ inserted: number }>(INSERT_BATCH, columns)
        const inserted = rows[0]?.inserted ?? 0
        return { inserted, duplicates: documents.length - inserted }
      } catch (err) {
        // The statement rolled back whole, so running it again is the same as running it once.
        if (attempt >= 5 || (err as { code?: string }).code !== DEADLOCK) throw err
      }
    }
  }

  async function list(query: ListQuery): Promise<ListResult> {
    const params: unknown[] = []
    const { from, where, order, param } = selection(query.filters ?? {}, params)
    let offset = ''
    if (query.cursor !== undefined) {
      const position = cursorPosition(query.cursor)
      where.push(
        `(${order}.detected_at, ${order}.id) < (${param(position.detectedAt)}, ${param(position.id)})`,
      )
    } else if (query.skip) {
      offset = ` OFFSET ${param(query.skip)}`
    }
    // One extra row tells whether a next page exists without a count.
    const limit = param(query.limit + 1)
    const { rows } = await pool.query<DetectionRow>(
      `SELECT ${DETECTION_COLUMNS} FROM ${from}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
       ORDER BY ${order}.detected_at DESC, ${order}.id DESC LIMIT ${limit}${offset}`,
      params,
    )
    return pageOf(rows, query.limit, toDetection, (row) => ({ detectedAt: row.detected_at, id: row.id }))
  }

  /** Unfiltered and single make/model/category-token/year counts are one counter row. */
  async function count(filters: DetectionFilters = {}): Promise<number> {
    const set = Object.entries(filters).filter(([, v]) => v !== undefined)
    if (set.length === 0) {
      const { rows } = await pool.query<{ n: string }>(
        "SELECT coalesce(sum(count), 0) AS n FROM detection_stats WHERE dim = 'make'",
      )
      return Number(rows[0]?.n ?? 0)
    }
    const [name, value] = set[0]!
    if (set.length === 1 && name !== 'from' && name !== 'to') {
      const dim = name === 'category' ? 'token' : name
      const key = name === 'year' ? String(value) : normalizeKey(String(value))
      const { rows } = await pool.query<{ count: string }>(
        'SELECT coalesce(sum(count), 0) AS count FROM detection_stats WHERE dim = $1 AND value_key = $2',
        [dim, key],
      )
      return Number(rows[0]?.count ?? 0)
    }
    const params: unknown[] = []
    const { from, where } = selection(filters, params)
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${from} WHERE ${where.join(' AND ')}`,
      params,
    )
    return Number(rows[0]?.n ?? 0)
  }

  async function stats(dim: StatsDimension): Promise<StatsResult> {
    const { rows } = await pool.query<{ value: string; count: string }>(
      `SELECT min(label) AS value, sum(count) AS count FROM detection_stats WHERE dim = $1
       GROUP BY value_key HAVING sum(count) > 0
       ORDER BY sum(count) DESC, min(label) COLLATE "C"`,
      [dim],
    )
    const items = rows.map((row) => ({ value: row.value, count: Number(row.count) }))
    return { total: items.reduce((sum, item) => sum + item.count, 0), items }
  }

  async function timeseries(query: TimeseriesQuery): Promise<TimeseriesResult> {
    const { from, to } = checkedTimeseriesRange(query)
    // Days add hours up; minutes and hours are stored. Epoch milliseconds and float8 sums come back
    // as JavaScript numbers, so 1,440 rows cost no date or numeric parsing.
    const width = query.bucket === 'minute' ? 'minute' : 'hour'
    const range = [width, from, to] as const
    const totals = pool.query<{ start: number; total: number; suspicious: number }>(
      `SELECT (extract(epoch FROM start) * 1000)::float8 AS start, sum(total)::float8 AS total,
         sum(suspicious)::float8 AS suspicious
       FROM detection_buckets WHERE width = $1 AND dim = '' AND start >= $2 AND start < $3
       GROUP BY start`,
      [...range],
    )
    const dim = query.groupBy
    const groups = dim ? topGroups(dim, range, query.top ?? DEFAULT_TIMESERIES_TOP) : Promise.resolve([])
    const [totalRows, groupRows] = await Promise.all([totals, groups])
    return assembleTimeseries(query, totalRows.rows, groupRows)
  }

  /** The top groups by total over the range (ties by display spelling), then their buckets. */
  async function topGroups(dim: StatsDimension, range: readonly [string, Date, Date], top: number) {
    const [totals, labels] = await Promise.all([
      pool.query<{ key: string; total: number }>(
        `SELECT value_key AS key, sum(total)::float8 AS total FROM detection_buckets
         WHERE width = $1 AND dim = $4 AND start >= $2 AND start < $3 GROUP BY value_key`,
        [...range, dim],
      ),
      pool.query<{ key: string; label: string }>(
        'SELECT value_key AS key, min(label) AS label FROM detection_stats WHERE dim = $1 GROUP BY value_key',
        [dim],
      ),
    ])
    const label = new Map(labels.rows.map((row) => [row.key, row.label]))
    const chosen = totals.rows
      .map((row) => ({ key: row.key, label: label.get(row.key) ?? row.key, total: row.total }))
      .sort((a, b) => b.total - a.total || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
      .slice(0, top)
    if (chosen.length === 0) return []
    const { rows } = await pool.query<{ key: string; start: number; total: number }>(
      `SELECT value_key AS key, (extract(epoch FROM start) * 1000)::float8 AS start, sum(total)::float8 AS total
       FROM detection_buckets
       WHERE width = $1 AND dim = $4 AND start >= $2 AND start < $3 AND value_key = ANY($5)
       GROUP BY value_key, start`,
      [...range, dim, chosen.map((group) => group.key)],
    )
    return rows.map((row) => ({ ...row, label: label.get(row.key) ?? row.key }))
  }

  async function ping(): Promise<void> {
    await pool.query('SELECT 1')
  }

  return { ensureIndexes, insertBatch, list, count, stats, timeseries, ping }
}
