// The in-place migration from the unpartitioned schema (version 1) to day partitions (version 2)
// and on to the bucket runs (version 4), with data in it: nothing lost, every answer the same
// before and after, and after the first fold into runs.
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import Postgrator from 'postgrator'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { requireEnv } from '../../../test/support/env.js'
import {
  createPostgresDetectionsRepository,
  DETECTIONS_SCHEMA_TABLE,
  type DetectionDocument,
  type DetectionsRepository,
  KEEP_EVERYTHING,
  migrateDetectionsSchema,
  STATS_DIMENSIONS,
  toDetectionDocument,
} from '../src/index.js'

/** The write of schema version 1, verbatim: what a store being migrated was filled by. */
const VERSION_1_INSERT = `
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
SELECT count(*)::int AS inserted FROM ins
`

const MINUTE = 60_000
const DAY = 86_400_000
const T0 = Date.UTC(2026, 10, 20, 22, 30)
const MAKES = ['Toyota', 'TOYOTA', 'MAZDA', 'smart'] as const
const CATEGORIES = ['SUV', 'Sedan', 'SUV, Pickup', 'Wagon, SUV'] as const

// Three days and a half of detections, 7 minutes apart, over two partitions.
const docs: DetectionDocument[] = Array.from({ length: 720 }, (_, i) => {
  const category = CATEGORIES[i % CATEGORIES.length]!
  return toDetectionDocument(
    { Year: 2000 + (i % 5), Make: MAKES[i % MAKES.length]!, Model: `M${i % 3}`, Category: category },
    { topic: 'migrated', partition: i % 2, offset: Math.floor(i / 2), timestamp: T0 + i * 7 * MINUTE },
    category.includes('SUV'),
  )
})

const base = requireEnv('DATABASE_URL')
const name = `migrate_${randomUUID().replaceAll('-', '')}`
let pool: pg.Pool
let repository: DetectionsRepository

function insertVersion1(batch: readonly DetectionDocument[]) {
  const columns: unknown[][] = Array.from({ length: 14 }, () => [])
  for (const d of batch) {
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
      d.categoryTokens.join(','),
      d.suspicious,
      d.source.topic,
      d.source.partition,
      d.source.offset,
    ]
    row.forEach((value, c) => {
      columns[c]!.push(value)
    })
  }
  return pool.query(VERSION_1_INSERT, columns)
}

/** Everything a user can read: every page, counts per filter, stats, and series at each width. */
async function answers() {
  const ids: string[] = []
  let cursor: string | undefined
  do {
    const page = await repository.list({ limit: 100, ...(cursor && { cursor }) })
    ids.push(...page.items.map((item) => item.id))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  const suv = await repository.list({ limit: 1000, filters: { category: 'suv' } })
  const stats = await Promise.all(STATS_DIMENSIONS.map((dim) => repository.stats(dim)))
  const counts = await Promise.all([
    repository.count(),
    repository.count({ make: 'toyota' }),
    repository.count({ category: 'pickup' }),
    repository.count({ year: 2001 }),
    repository.count({ make: 'mazda', from: new Date(T0 + DAY) }),
  ])
  const range = { from: new Date(T0 - DAY), to: new Date(T0 + 4 * DAY) }
  const series = await Promise.all([
    repository.timeseries({
      bucket: 'minute',
      from: new Date(T0),
      to: new Date(T0 + 1000 * MINUTE),
      groupBy: 'make',
    }),
    repository.timeseries({ bucket: 'hour', ...range, groupBy: 'category' }),
    repository.timeseries({ bucket: 'day', ...range, groupBy: 'year' }),
  ])
  return {
    ids,
    suv: suv.items.map((item) => item.id),
    stats,
    counts,
    series: series.map(({ available, ...s }) => s),
  }
}

/** Straight from the tables, whichever version: ids, stats rows and counts per minute and hour. */
async function rawState(minutes: string, hours: string) {
  const width = (table: string, name: string) =>
    `SELECT start, sum(total)::int AS total, sum(suspicious)::int AS suspicious FROM ${table}
     WHERE ${table === 'detection_buckets' ? `width = '${name}' AND ` : ''}dim = '' GROUP BY start ORDER BY start`
  const [ids, stats, perMinute, perHour] = await Promise.all([
    pool.query('SELECT id FROM detections ORDER BY id'),
    pool.query('SELECT dim, value_key, shard, label, count FROM detection_stats ORDER BY 1, 2, 3'),
    pool.query(width(minutes, 'minute')),
    pool.query(width(hours, 'hour')),
  ])
  const statsRead = await Promise.all(STATS_DIMENSIONS.map((dim) => repository.stats(dim)))
  return { ids: ids.rows, stats: stats.rows, statsRead, perMinute: perMinute.rows, perHour: perHour.rows }
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end())
  const url = new URL(base)
  url.pathname = `/${name}`
  pool = new pg.Pool({ connectionString: url.toString(), max: 4 })
  pool.on('error', () => {})
  repository = createPostgresDetectionsRepository(pool)
  const client = await pool.connect()
  try {
    const postgrator = new Postgrator({
      migrationPattern: fileURLToPath(new URL('../migrations/*.sql', import.meta.url)),
      driver: 'pg',
      database: name,
      schemaTable: DETECTIONS_SCHEMA_TABLE,
      execQuery: (query) => client.query(query),
    })
    await postgrator.migrate('001')
  } finally {
    client.release()
  }
})
afterAll(async () => {
  await pool?.end()
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => admin.end())
})

it('moves an unpartitioned store into day partitions with every answer unchanged', async () => {
  for (let i = 0; i < docs.length; i += 100) await insertVersion1(docs.slice(i, i + 100))
  // A redelivered batch, counted once, as version 1 did.
  await insertVersion1(docs.slice(50, 150))
  const before = await rawState('detection_buckets', 'detection_buckets')

  const applied = await migrateDetectionsSchema(pool)
  expect(applied.map((m) => m.version)).toEqual([2, 3, 4])
  const after = await answers()
  expect(await rawState('detection_minutes', 'detection_hours')).toEqual(before)

  expect(new Set(after.ids)).toEqual(new Set(docs.map((d) => d._id)))
  expect(after.ids).toHaveLength(docs.length)
  expect(after.counts[0]).toBe(docs.length)
  expect(after.counts[1]).toBe(docs.filter((d) => d.makeKey === 'toyota').length)
  expect(after.counts[2]).toBe(docs.filter((d) => d.categoryTokens.includes('pickup')).length)
  expect(after.counts[3]).toBe(docs.filter((d) => d.year === 2001).length)
  expect(after.suv).toEqual(
    docs
      .filter((d) => d.categoryTokens.includes('suv'))
      .sort((a, b) => b.detectedAt.getTime() - a.detectedAt.getTime() || (a._id < b._id ? 1 : -1))
      .map((d) => d._id),
  )
  const days = after.series[2]!
  expect(days.points.reduce((n, p) => n + p.total, 0)).toBe(docs.length)

  // The first maintenance pass moves every closed minute and hour into runs: the same answers.
  const last = Math.max(...docs.map((d) => d.detectedAt.getTime()))
  await repository.maintain(KEEP_EVERYTHING, new Date(last + 24 * 60 * MINUTE))
  const left = await pool.query<{ minutes: number; hours: number; runs: number }>(
    `SELECT (SELECT count(*) FROM detection_minutes)::int AS minutes,
       (SELECT count(*) FROM detection_hours)::int AS hours,
       (SELECT count(*) FROM detection_minute_runs)::int + (SELECT count(*) FROM detection_hour_runs)::int AS runs`,
  )
  expect(left.rows[0]).toMatchObject({ minutes: 0, hours: 0 })
  expect(left.rows[0]?.runs).toBeGreaterThan(0)
  expect(await answers()).toEqual(after)

  // The same detections written by today's store from scratch give the same answers.
  const fresh = `${name}_fresh`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${fresh}`)
  const url = new URL(base)
  url.pathname = `/${fresh}`
  const freshPool = new pg.Pool({ connectionString: url.toString(), max: 4 })
  // DROP … WITH (FORCE) ends sessions the pool may still be closing.
  freshPool.on('error', () => {})
  try {
    const freshRepository = createPostgresDetectionsRepository(freshPool)
    await freshRepository.ensureIndexes()
    for (let i = 0; i < docs.length; i += 100) await freshRepository.insertBatch(docs.slice(i, i + 100))
    const migrated = repository
    repository = freshRepository
    const expected = await answers()
    repository = migrated
    expect(after).toEqual(expected)
  } finally {
    await freshPool.end()
    await admin.query(`DROP DATABASE IF EXISTS ${fresh} WITH (FORCE)`).finally(() => admin.end())
  }
})
