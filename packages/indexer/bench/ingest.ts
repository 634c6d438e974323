// Indexing throughput on a backlog: the real indexer (Kafka → store → transaction) against a raw
// insertMany of the same documents into the same store, with the same batch size, in the same run.
//
//   node --conditions=development --import tsx bench/ingest.ts   (from the repository root) --count 100000 [--rounds 3]
//
// Needs KAFKA_BROKERS and MONGO_URL (`bash scripts/services/services.sh env`); prints markdown.
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import {
  createMongoDetectionsRepository,
  type DetectionDocument,
  toDetectionDocument,
} from '@intellisite/detections-store'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import { MongoClient } from 'mongodb'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { createIndexer } from '../src/indexer.js'
import { createIndexerMetrics } from '../src/metrics.js'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    partitions: { type: 'string', default: '3' },
  },
})
const count = Number(args.count)
const rounds = Number(args.rounds)
const partitions = Number(args.partitions)
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:29092').split(',')
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
await mongo.connect()

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

interface Round {
  indexerSeconds: number
  rawSeconds: number
  batchSize: number
}

async function round(): Promise<Round> {
  const id = randomUUID()
  const topics = { detections: `bench-det-${id}`, alerts: `bench-alerts-${id}`, dlq: `bench-dlq-${id}` }
  const groupId = `bench-${id}`
  const dbName = `bench_${id.replaceAll('-', '')}`
  const rawDbName = `${dbName}_raw`
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
    const repository = createMongoDetectionsRepository(mongo.db(dbName))
    await repository.ensureIndexes()
    const indexer = createIndexer({
      kafka,
      repository,
      config: {
        topics: { ...topics, partitions, replicationFactor: 1 },
        groupId,
        suspiciousVehicle: 'SUV',
        maxMessageBytes: 64 * 1024,
        maxBytesPerPartition: 1024 * 1024,
        concurrency: partitions,
        sessionTimeoutMs: 30_000,
        heartbeatIntervalMs: 3_000,
        transactionTimeoutMs: 60_000,
        storeRetry: { initialMs: 200, maxMs: 5_000 },
        publishRetry: { initialMs: 500, maxMs: 30_000 },
        stall: { failures: 5, afterMs: 60_000 },
      },
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
    const stored = await repository.collection.countDocuments()
    if (stored !== count) throw new Error(`indexer stored ${stored} of ${count}`)
    const writes = (await metrics.bulkWriteSeconds.get()).values.find((v) => v.metricName?.endsWith('_count'))
    const batchSize = Math.round(count / (writes?.value || 1))

    // 2. Raw insertMany of the same documents, same batch size, one writer per partition as well.
    const documents: DetectionDocument[] = produced.map((p) =>
      toDetectionDocument(
        JSON.parse(p.value),
        { topic: topics.detections, partition: p.partition, offset: p.offset, timestamp: p.timestamp },
        false,
      ),
    )
    // Same collection and indexes as the indexer writes to, so the difference is the pipeline
    // (fetch, decode, stats counters, Kafka transaction), not the store's index maintenance.
    const rawRepository = createMongoDetectionsRepository(mongo.db(rawDbName))
    await rawRepository.ensureIndexes()
    const raw = rawRepository.collection
    const byPartition = Array.from({ length: partitions }, (_, p) =>
      documents.filter((d) => d.source.partition === p),
    )
    const t1 = performance.now()
    await Promise.all(
      byPartition.map(async (docs) => {
        for (let i = 0; i < docs.length; i += batchSize) {
          await raw.insertMany(docs.slice(i, i + batchSize), { ordered: false })
        }
      }),
    )
    const rawSeconds = (performance.now() - t1) / 1000
    return { indexerSeconds, rawSeconds, batchSize }
  } finally {
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {})
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect()
    await mongo
      .db(dbName)
      .dropDatabase()
      .catch(() => {})
    await mongo
      .db(rawDbName)
      .dropDatabase()
      .catch(() => {})
  }
}

const results: Round[] = []
for (let i = 0; i < rounds; i++) {
  results.push(await round())
  process.stderr.write(`round ${i + 1}/${rounds} done\n`)
}
await mongo.close()

const rate = (seconds: number) => Math.round(count / seconds)
const row = (label: string, r: Round) =>
  `| ${label} | ${r.batchSize} | ${r.indexerSeconds.toFixed(2)} | ${rate(r.indexerSeconds)} | ${r.rawSeconds.toFixed(2)} | ${rate(r.rawSeconds)} | ${(r.rawSeconds / r.indexerSeconds).toFixed(2)} |`
console.log(
  `Backlog of ${count} detections, ${partitions} partitions, ${rounds} rounds (Kafka + FerretDB on loopback). ` +
    'Indexer: from joining the group until every offset is committed. Raw: insertMany into a collection ' +
    'with the same indexes, same batch size, one writer per partition.\n',
)
console.log(
  '| round | docs per bulk write | indexer s | indexer det/s | raw insertMany s | raw det/s | indexer/raw |',
)
console.log('|---|---|---|---|---|---|---|')
for (const [i, r] of results.entries()) console.log(row(String(i + 1), r))
console.log(
  row('**median**', {
    indexerSeconds: median(results.map((r) => r.indexerSeconds)),
    rawSeconds: median(results.map((r) => r.rawSeconds)),
    batchSize: median(results.map((r) => r.batchSize)),
  }),
)
