import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import Postgrator from 'postgrator'
import {
  DETECTIONS_SCHEMA_TABLE,
  migrateDetectionsSchema,
  toDetectionDocument,
} from '../packages/detections-store/src/index.js'

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
const N = Number(process.argv[2] ?? 200000)
const base = process.env.DATABASE_URL!
const name = `mig_${randomUUID().replaceAll('-', '').slice(0, 12)}`
const admin = new pg.Client({ connectionString: base })
await admin.connect()
await admin.query(`CREATE DATABASE ${name}`)
const url = new URL(base)
url.pathname = `/${name}`
const pool = new pg.Pool({ connectionString: url.toString(), max: 2 })
pool.on('error', () => {})
const client = await pool.connect()
await new Postgrator({
  migrationPattern: fileURLToPath(new URL('../packages/detections-store/migrations/*.sql', import.meta.url)),
  driver: 'pg',
  database: name,
  schemaTable: DETECTIONS_SCHEMA_TABLE,
  execQuery: (q) => client.query(q),
}).migrate('001')
client.release()
const start = Date.now() - 31 * 86400000
for (let i = 0; i < N; i += 5000) {
  const cols: unknown[][] = Array.from({ length: 14 }, () => [])
  for (let j = i; j < Math.min(N, i + 5000); j++) {
    const d = toDetectionDocument(
      {
        Year: 2000 + (j % 25),
        Make: ['Toyota', 'MAZDA', 'Ford', 'Honda', 'smart', 'Volvo'][j % 6]!,
        Model: `M${j % 40}`,
        Category: ['SUV', 'Sedan', 'SUV, Pickup'][j % 3]!,
      },
      { topic: 't', partition: j % 3, offset: j, timestamp: start + Math.floor((j * 31 * 86400000) / N) },
      true,
    )
    ;[
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
    ].forEach((v, c) => {
      cols[c]!.push(v)
    })
  }
  await pool.query(VERSION_1_INSERT, cols)
}
const size = async () =>
  (await pool.query('SELECT pg_size_pretty(pg_database_size(current_database())) s')).rows[0].s
console.log('seeded', N, await size())
const t = performance.now()
await migrateDetectionsSchema(pool)
console.log('migration s', ((performance.now() - t) / 1000).toFixed(1), await size())
await pool.end()
await admin.query(`DROP DATABASE ${name} WITH (FORCE)`).catch(() => {})
await admin.end()
