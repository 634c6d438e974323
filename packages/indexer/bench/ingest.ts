// Indexing throughput on a backlog: the real indexer (Kafka → store → transaction) against raw
// writes of the same documents into the same kind of store, with the same batch size, one writer
// per partition, in the same run. On PostgreSQL the floor is COPY (text) of the same rows, the
// detections and their category token rows, into the same tables with the same indexes, one
// transaction per batch, without counters; beside it COPY of the detection rows alone and the
// multi-row INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING. On MongoDB: an insertMany into
// the same collection and indexes.
//
//   node --conditions=development --import tsx bench/ingest.ts   (from the repository root) --count 100000 [--rounds 3] [--store postgres|mongodb] [--rules-rounds R] [--rules-sets thousand,narrow,nomatch,watchlist,everything]
//
// Then the cost of alert rules (rules-cost.ts): the same size of backlog indexed with the built-in
// rule alone, with 1,000 broad or narrow rules and with a watch list of 100,000 entries (--rules-rounds, default
// --rounds; 0 skips it; --rules-sets picks among the rule sets), and the matcher alone.
//
// Needs KAFKA_BROKERS and DATABASE_URL or MONGO_URL (`bash scripts/services/services.sh env`);
// prints markdown.
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { LOCAL_DATABASE_URL } from '@intellisite/common'
import {
  copyInto,
  createMongoDetectionsRepository,
  DETECTION_COLUMNS,
  DETECTIONS_COLLECTION,
  type DetectionDocument,
  detectionCopyRows,
  detectionTokenCopyRows,
  openDetectionsStore,
  toDetectionDocument,
} from '@intellisite/detections-store'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { loadConfig } from '../src/config.js'
import { createIndexer } from '../src/indexer.js'
import { createIndexerMetrics } from '../src/metrics.js'
import { benchSettings } from './bench-settings.js'
import { rulesCost } from './rules-cost.js'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    partitions: { type: 'string', default: '3' },
    store: { type: 'string', default: 'postgres' },
    'rules-rounds': { type: 'string' },
    'rules-sets': { type: 'string' },
  },
})
const PG = args.store !== 'mongodb'
const databaseUrl = process.env.DATABASE_URL ?? LOCAL_DATABASE_URL
const count = Number(args.count)
const rounds = Number(args.rounds)
const rulesRounds = Number(args['rules-rounds'] ?? args.rounds)
const partitions = Number(args.partitions)
const brokers = loadConfig(process.env).kafka.brokers
const mongoUrl = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27018/intellisite'

const MAKES = ['Toyota', 'MAZDA', 'smart', 'Ford', 'Chevrolet', 'BMW', 'Land Rover', 'Honda', 'Kia']
const CATEGORIES = [
  'SUV',
  'Sedan',
  'SUV, Pickup',
  'Wagon, SUV',
  'Pickup',
  'Sedan, Wagon',
  'Coupe',
  'Hatchback',
]
const detection = (i: number) =>
  JSON.stringify({
    Year: 1990 + (i % 35),
    Make: MAKES[i % MAKES.length],
    Model: `Model ${i % 97}`,
    Category: CATEGORIES[(i * 7 + 3) % CATEGORIES.length],
  })

const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING })
const mongo = new MongoClient(mongoUrl)
if (!PG) await mongo.connect()

const withPath = (url: string, name: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${name}`
  return parsed.toString()
}

/**
 * The store's own batch write (`insertBatch`: rows, token rows and counters, without Kafka), then
 * the raw references: `copy` (the floor: detection rows and token rows by COPY), `copy-rows`
 * (detection rows only), `unnest` (one INSERT … SELECT FROM unnest per batch). MongoDB has one.
 */
type RawWrite = 'insertBatch' | 'copy' | 'copy-rows' | 'unnest'
const RAW_WRITES: RawWrite[] = PG ? ['insertBatch', 'copy', 'copy-rows', 'unnest'] : ['insertBatch', 'copy']

/** A fresh database for a store of either backend, and how to drop it. */
async function freshStore(name: string) {
  if (!PG) {
    const detections = mongo.db(name).collection<DetectionDocument>(DETECTIONS_COLLECTION)
    return {
      repository: createMongoDetectionsRepository(mongo.db(name)),
      stored: () => detections.countDocuments(),
      rawWrite: async (docs: DetectionDocument[], _how: RawWrite) => {
        await detections.insertMany(docs, { ordered: false })
      },
      drop: () =>
        mongo
          .db(name)
          .dropDatabase()
          .then(() => {}),
    }
  }
  const store = openDetectionsStore(withPath(databaseUrl, name))
  const pool = new pg.Pool({ connectionString: withPath(databaseUrl, name), max: partitions })
  // DROP … WITH (FORCE) at the end ends sessions the pool may still hold idle.
  pool.on('error', () => {})
  return {
    repository: store.repository,
    stored: async () => Number((await pool.query('SELECT count(*) AS n FROM detections')).rows[0].n),
    /** The same rows into the same tables and indexes without the pipeline or the counters. */
    rawWrite: async (docs: DetectionDocument[], how: RawWrite) => {
      if (how === 'unnest') {
        await pool.query(
          `INSERT INTO detections (${DETECTION_COLUMNS})
           SELECT id, timestamptz 'epoch' + ts * interval '1 millisecond', year, make, model, category,
             make_key, model_key, category_key, string_to_array(tokens, ','), suspicious, topic, part, off, ts
           FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
             $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[], $13::int[], $14::bigint[])
             AS i(id, ts, year, make, model, category, make_key, model_key, category_key, tokens,
               suspicious, topic, part, off)
           ON CONFLICT DO NOTHING`,
          [
            docs.map((d) => d._id),
            docs.map((d) => d.detectedAt.getTime()),
            docs.map((d) => d.year),
            docs.map((d) => d.make),
            docs.map((d) => d.model),
            docs.map((d) => d.category),
            docs.map((d) => d.makeKey),
            docs.map((d) => d.modelKey),
            docs.map((d) => d.categoryKey),
            docs.map((d) => d.categoryTokens.join(',')),
            docs.map((d) => d.suspicious),
            docs.map((d) => d.source.topic),
            docs.map((d) => d.source.partition),
            docs.map((d) => d.source.offset),
          ],
        )
        return
      }
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await copyInto(client, `detections (${DETECTION_COLUMNS})`, detectionCopyRows(docs))
        if (how === 'copy') {
          await copyInto(
            client,
            'detection_category_tokens (token, detected_at, id)',
            detectionTokenCopyRows(docs),
          )
        }
        await client.query('COMMIT')
      } finally {
        client.release()
      }
    },
    drop: async () => {
      await Promise.allSettled([store.close(), pool.end()])
      const admin = new pg.Client({ connectionString: databaseUrl })
      await admin.connect()
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => admin.end())
    },
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

interface Round {
  indexerSeconds: number
  /** Seconds of each raw write of the same documents ({@link RAW_WRITES}). */
  raw: Record<RawWrite, number>
  batchSize: number
  /** Seconds spent inside insertBatch, summed over the partitions written at the same time. */
  storeSeconds: number
}

async function round(): Promise<Round> {
  const id = randomUUID()
  const topics = {
    detections: `bench-det-${id}`,
    alerts: `bench-alerts-${id}`,
    dlq: `bench-dlq-${id}`,
    rules: `bench-rules-${id}`,
  }
  const groupId = `bench-${id}`
  const dbName = `bench_${id.replaceAll('-', '')}`
  const rawDbName = `${dbName}_raw`
  const stores: { drop(): Promise<void> }[] = []
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({
      topics: Object.values(topics).map((topic) => ({ topic, numPartitions: partitions })),
      waitForLeaders: true,
    })
    // The backlog: everything is in the topic before the indexer starts.
    // Idempotent, so a retried send cannot write a record batch twice into the backlog.
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    })
    await producer.connect()
    const produced: { partition: number; offset: number; timestamp: number; value: string }[] = []
    const perSend = 6000
    for (let start = 0; start < count; start += perSend) {
      const now = String(Date.now())
      const messages = Array.from({ length: Math.min(perSend, count - start) }, (_, i) => ({
        value: detection(start + i),
        partition: (start + i) % partitions,
        timestamp: now,
      }))
      const results = await producer.send({ topic: topics.detections, messages })
      const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]))
      for (const m of messages) {
        const offset = next.get(m.partition)!
        next.set(m.partition, offset + 1)
        produced.push({ partition: m.partition, offset, timestamp: Number(m.timestamp), value: m.value })
      }
    }
    await producer.disconnect()

    // 1. The indexer, from joining its group until every offset is committed.
    const registry = new Registry()
    const metrics = createIndexerMetrics(registry)
    const target = await freshStore(dbName)
    stores.push(target)
    const { repository } = target
    await repository.ensureIndexes()
    const indexer = createIndexer({
      kafka,
      repository,
      config: benchSettings(topics, groupId, partitions),
      logger: pino({ level: 'silent' }),
      metrics,
    })
    await indexer.start()
    while (!indexer.ready()) await new Promise((r) => setTimeout(r, 5))
    const t0 = performance.now()
    for (;;) {
      const offsets = await admin.fetchOffsets({ groupId, topics: [topics.detections] })
      const committed = (offsets[0]?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0)
      if (committed === count) break
      if (committed > count) throw new Error(`committed ${committed} of ${count}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    const indexerSeconds = (performance.now() - t0) / 1000
    await indexer.stop()
    const stored = await target.stored()
    if (stored !== count) throw new Error(`indexer stored ${stored} of ${count}`)
    const writes = (await metrics.read.bulkWriteSeconds.get()).values.find((v) =>
      v.metricName?.endsWith('_count'),
    )
    const batchSize = Math.round(count / (writes?.value || 1))
    const storeSeconds =
      (await metrics.read.bulkWriteSeconds.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value ??
      0

    // 2. Raw insertMany of the same documents, same batch size, one writer per partition as well.
    const documents: DetectionDocument[] = produced.map((p) =>
      toDetectionDocument(
        JSON.parse(p.value),
        { topic: topics.detections, partition: p.partition, offset: p.offset, timestamp: p.timestamp },
        false,
      ),
    )
    // Same tables (collection) and indexes as the indexer writes to, so the difference is the
    // pipeline (fetch, decode, counters, Kafka transaction), not the store's index maintenance.
    const byPartition = Array.from({ length: partitions }, (_, p) =>
      documents.filter((d) => d.source.partition === p),
    )
    const raw = {} as Record<RawWrite, number>
    for (const how of RAW_WRITES) {
      const rawStore = await freshStore(`${rawDbName}_${how.replace('-', '_')}`)
      stores.push(rawStore)
      await rawStore.repository.ensureIndexes()
      const t1 = performance.now()
      await Promise.all(
        byPartition.map(async (docs) => {
          for (let i = 0; i < docs.length; i += batchSize) {
            const batch = docs.slice(i, i + batchSize)
            if (how === 'insertBatch') await rawStore.repository.insertBatch(batch)
            else await rawStore.rawWrite(batch, how)
          }
        }),
      )
      raw[how] = (performance.now() - t1) / 1000
    }
    return { indexerSeconds, raw, batchSize, storeSeconds }
  } finally {
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {})
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect()
    for (const store of stores.splice(0)) await store.drop().catch(() => {})
  }
}

const results: Round[] = []
for (let i = 0; i < rounds; i++) {
  results.push(await round())
  process.stderr.write(`round ${i + 1}/${rounds} done\n`)
}

const rate = (seconds: number) => Math.round(count / seconds)
const rawCells = (r: Round) =>
  RAW_WRITES.map((how) => `${rate(r.raw[how])} | ${(r.raw[how] / r.indexerSeconds).toFixed(2)}`).join(' | ')
/** The store's batch write against each raw write of the same rows. */
const storeCells = (r: Round) =>
  RAW_WRITES.filter((how) => how !== 'insertBatch')
    .map((how) => (r.raw[how] / r.raw.insertBatch).toFixed(2))
    .join(' | ')
const row = (label: string, r: Round) =>
  `| ${label} | ${r.batchSize} | ${r.indexerSeconds.toFixed(2)} | ${rate(r.indexerSeconds)} | ${rawCells(r)} | ${storeCells(r)} | ${r.storeSeconds.toFixed(2)} |`
console.log(
  `Backlog of ${count} detections, ${partitions} partitions, ${rounds} rounds (Kafka + ` +
    `${PG ? 'PostgreSQL' : 'FerretDB'} on loopback). Indexer: from joining the group until every offset is ` +
    'committed. Raw writes: the same documents, same batch size, one writer per partition, each into a fresh ' +
    (PG
      ? "database with the same tables and indexes: the store's own batch write (repository.insertBatch: rows, " +
        'token rows and counters, without Kafka), COPY of the detection rows and their token rows in one ' +
        'transaction per batch (the floor: the same rows into the same tables, no counters), COPY of the ' +
        'detection rows alone, and one INSERT … SELECT FROM unnest … ON CONFLICT DO NOTHING per batch into the ' +
        'detections table. "indexer ÷" = indexer det/s over that write\'s det/s.\n'
      : 'collection with the same indexes (insertMany).\n'),
)
const RAW_LABELS: Record<RawWrite, string> = {
  insertBatch: 'store write det/s: repository.insertBatch alone',
  copy: PG ? 'raw det/s: COPY rows + token rows (floor)' : 'raw det/s: insertMany',
  'copy-rows': 'COPY detection rows only det/s',
  unnest: 'unnest INSERT det/s',
}
console.log(
  `| round | docs per bulk write | indexer s | indexer det/s | ${RAW_WRITES.map((how) => `${RAW_LABELS[how]} | indexer ÷ ${how}`).join(' | ')} | ${RAW_WRITES.filter(
    (how) => how !== 'insertBatch',
  )
    .map((how) => `store write ÷ ${how}`)
    .join(' | ')} | indexer's insertBatch s (sum of partitions) |`,
)
console.log(
  `|---|---|---|---|${RAW_WRITES.map(() => '---|---|').join('')}${RAW_WRITES.slice(1)
    .map(() => '---|')
    .join('')}---|`,
)
for (const [i, r] of results.entries()) console.log(row(String(i + 1), r))
console.log(
  row('**median**', {
    indexerSeconds: median(results.map((r) => r.indexerSeconds)),
    raw: Object.fromEntries(RAW_WRITES.map((how) => [how, median(results.map((r) => r.raw[how]))])) as Record<
      RawWrite,
      number
    >,
    batchSize: median(results.map((r) => r.batchSize)),
    storeSeconds: median(results.map((r) => r.storeSeconds)),
  }),
)
if (rulesRounds > 0) {
  const sets = args['rules-sets']?.split(',').map((s) => s.trim())
  console.log(
    await rulesCost({ kafka, count, rounds: rulesRounds, partitions, freshStore, ...(sets && { sets }) }),
  )
}
if (!PG) await mongo.close()
