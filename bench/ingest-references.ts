// Ingest references for bench/ingest.ts measured side by side on one backlog per
// round (unique topic, produced before anything reads it; every reader is a fresh consumer group):
//   (b) consume-only: the indexer's client (kafkajs) and fetch settings, eachBatch, no processing —
//       the broker/client limit;
//   (c) naive: eachMessage, one insert per message (PostgreSQL: one INSERT … ON CONFLICT DO NOTHING;
//       MongoDB: insertOne), autocommit — the common approach;
//   the real indexer as a process (packages/indexer/src/main.ts), whose peak RSS (VmHWM) is read
//   from /proc before it exits.
// (c) and the indexer write to the store of the run (`--store`, PostgreSQL by default, as the other
// sections), each into a fresh database; the table names it.
//
//   node --conditions=development --import tsx bench/ingest-references.ts [--count 100000]
//     [--naive-count 3000] [--rounds 3] [--partitions 3] [--store postgres|mongodb] [--tiny]
//
// Also importable: produceBacklog, consumeOnly, naivePerMessage, indexerProcess.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type Admin, type ConsumerRunConfig, Kafka, logLevel } from 'kafkajs'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import {
  createMongoDetectionsRepository,
  DETECTION_COLUMNS,
  DETECTIONS_COLLECTION,
  type DetectionDocument,
  type DetectionsBackend,
  detectionMessageSchema,
  openDetectionsStore,
  toDetectionDocument,
} from '../packages/detections-store/src/index.js'
import { createDetectionGenerator, encodeDetection } from '../packages/producer/src/detection-generator.js'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'
import { freePort } from '../test/support/ports.js'

const root = new URL('..', import.meta.url).pathname
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The indexer's consumer settings (packages/indexer/src/indexer.ts with the config defaults). */
const CONSUMER_SETTINGS = {
  sessionTimeout: 30_000,
  heartbeatInterval: 3_000,
  maxBytesPerPartition: 1024 * 1024,
  maxWaitTimeInMs: 1_000,
  readUncommitted: false,
} as const

export interface Backlog {
  topic: string
  partitions: number
  count: number
}

/** Creates `topic` and fills it with `count` generated detections, round-robin over the partitions. */
export async function produceBacklog(kafka: Kafka, backlog: Backlog, seed = 'bench'): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({
      topics: [{ topic: backlog.topic, numPartitions: backlog.partitions }],
      waitForLeaders: true,
    })
  } finally {
    await admin.disconnect()
  }
  const generate = createDetectionGenerator({ seed })
  // Idempotent, so a retried send cannot write a record batch twice into the backlog.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const perSend = 6_000
    for (let start = 0; start < backlog.count; start += perSend) {
      const messages = Array.from({ length: Math.min(perSend, backlog.count - start) }, (_, i) => ({
        value: encodeDetection(generate()),
        partition: (start + i) % backlog.partitions,
      }))
      await producer.send({ topic: backlog.topic, messages })
    }
  } finally {
    await producer.disconnect()
  }
}

/**
 * Runs a fresh consumer group over the backlog from its beginning; seconds from joining the group
 * until the handler built by `run` calls `finish`.
 */
async function timeConsumer(
  kafka: Kafka,
  backlog: Backlog,
  groupId: string,
  run: (finish: () => void) => ConsumerRunConfig,
): Promise<number> {
  const consumer = kafka.consumer({ groupId, ...CONSUMER_SETTINGS })
  let joinedAt = 0
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinedAt ||= performance.now()
  })
  let resolve: (end: number) => void = () => {}
  const done = new Promise<number>((r) => {
    resolve = r
  })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: backlog.topic, fromBeginning: true })
    await consumer.run(run(() => resolve(performance.now())))
    const end = await done
    return (end - joinedAt) / 1000
  } finally {
    await consumer.disconnect()
  }
}

/** Seconds from joining the group until `count` records were delivered to eachBatch. */
export async function consumeOnly(kafka: Kafka, backlog: Backlog, groupId: string): Promise<number> {
  let seen = 0
  return timeConsumer(kafka, backlog, groupId, (finish) => ({
    partitionsConsumedConcurrently: backlog.partitions,
    eachBatch: async ({ batch }) => {
      seen += batch.messages.length
      if (seen >= backlog.count) finish()
    },
  }))
}

/** Where the naive consumer and the indexer process write: a fresh database of the run's store. */
export interface TargetStore {
  backend: DetectionsBackend
  url: string
  /** One detection, one round trip, no token rows and no counters (what the naive approach does). */
  insertOne(document: DetectionDocument): Promise<void>
  stored(): Promise<number>
  drop(): Promise<void>
}

export interface StoreEnv {
  brokers: string
  mongoUrl: string
  databaseUrl: string
}

/** A fresh database on `backend` with the detections schema, for one reader of one round. */
export async function targetStore(
  env: StoreEnv,
  backend: DetectionsBackend,
  name: string,
): Promise<TargetStore> {
  if (backend === 'mongodb') {
    const url = new URL(env.mongoUrl)
    url.pathname = `/${name}`
    const mongo = new MongoClient(env.mongoUrl)
    await mongo.connect()
    const repository = createMongoDetectionsRepository(mongo.db(name))
    await repository.ensureIndexes()
    const detections = mongo.db(name).collection<DetectionDocument>(DETECTIONS_COLLECTION)
    return {
      backend,
      url: url.toString(),
      insertOne: async (document) => {
        await detections.insertOne(document)
      },
      stored: () => detections.estimatedDocumentCount(),
      drop: async () => {
        await mongo
          .db(name)
          .dropDatabase()
          .catch(() => {})
        await mongo.close()
      },
    }
  }
  const url = new URL(env.databaseUrl)
  url.pathname = `/${name}`
  const admin = new pg.Client({ connectionString: env.databaseUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const store = openDetectionsStore(url.toString())
  await store.repository.ensureIndexes()
  await store.close()
  const pool = new pg.Pool({ connectionString: url.toString(), max: 3 })
  pool.on('error', () => {})
  const values = DETECTION_COLUMNS.split(',')
    .map((_, i) => `$${i + 1}`)
    .join(', ')
  return {
    backend,
    url: url.toString(),
    insertOne: async (d) => {
      await pool.query(
        `INSERT INTO detections (${DETECTION_COLUMNS}) VALUES (${values}) ON CONFLICT DO NOTHING`,
        [
          d._id,
          d.detectedAt,
          d.year,
          d.make,
          d.model,
          d.category,
          d.makeKey,
          d.modelKey,
          d.categoryKey,
          d.categoryTokens,
          d.suspicious,
          d.source.topic,
          d.source.partition,
          d.source.offset,
          d.source.timestamp,
        ],
      )
    },
    stored: async () => Number((await pool.query('SELECT count(*) AS n FROM detections')).rows[0].n),
    drop: async () => {
      await pool.end().catch(() => {})
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
      await admin.end()
    },
  }
}

/**
 * The common approach: eachMessage, parse, one insert per detection, kafkajs autocommit. Stops
 * after `count` inserts (it is too slow for the whole backlog); seconds from joining the group.
 */
export async function naivePerMessage(
  kafka: Kafka,
  target: TargetStore,
  backlog: Backlog,
  groupId: string,
): Promise<number> {
  let inserted = 0
  return timeConsumer(kafka, backlog, groupId, (finish) => ({
    eachMessage: async ({ topic, partition, message }) => {
      if (inserted >= backlog.count) return
      const parsed = detectionMessageSchema.parse(JSON.parse(message.value?.toString() ?? 'null'))
      const coords = {
        topic,
        partition,
        offset: Number(message.offset),
        timestamp: Number(message.timestamp),
      }
      await target.insertOne(toDetectionDocument(parsed, coords, parsed.Category.includes('SUV')))
      if (++inserted === backlog.count) finish()
    },
  }))
}

/** Peak resident set size (VmHWM) of a live process, in MiB; undefined once it has exited. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

async function committed(admin: Admin, groupId: string, topic: string): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  return (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0)
}

export interface IndexerProcessResult {
  seconds: number
  peakRssMiB: number
}

/**
 * The production indexer (main.ts from source through tsx, LOG_LEVEL=warn) as its own process on
 * the backlog: seconds from /readyz (joined the group) until every offset is committed, which is
 * after every detection is stored and its alerts are committed.
 */
export async function indexerProcess(
  kafka: Kafka,
  env: { brokers: string; storeUrl: string },
  backlog: Backlog,
  names: { groupId: string; alerts: string; dlq: string; rules: string },
  timeoutMs = 600_000,
): Promise<IndexerProcessResult> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [...TS_NODE_FLAGS, 'packages/indexer/src/main.ts'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      KAFKA_BROKERS: env.brokers,
      DETECTIONS_STORE_URL: env.storeUrl,
      LOG_LEVEL: 'warn',
      DETECTIONS_TOPIC: backlog.topic,
      ALERTS_TOPIC: names.alerts,
      DLQ_TOPIC: names.dlq,
      ALERT_RULES_TOPIC: names.rules,
      TOPIC_PARTITIONS: String(backlog.partitions),
      INDEXER_GROUP_ID: names.groupId,
      INDEXER_HOST: '127.0.0.1',
      INDEXER_PORT: String(port),
    },
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let exitCode: number | null | undefined
  void exited.then((code) => {
    exitCode = code
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const deadline = Date.now() + timeoutMs
    const alive = () => {
      if (exitCode !== undefined) throw new Error(`indexer exited early with ${exitCode}`)
      if (Date.now() > deadline) throw new Error('indexer did not finish in time')
    }
    for (;;) {
      alive()
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
      if (ok) break
      await sleep(10)
    }
    const t0 = performance.now()
    for (;;) {
      alive()
      const done = await committed(admin, names.groupId, backlog.topic)
      if (done === backlog.count) break
      if (done > backlog.count) throw new Error(`committed ${done} of ${backlog.count}`)
      await sleep(20)
    }
    const seconds = (performance.now() - t0) / 1000
    const peak = peakRssMiB(child.pid!)
    if (peak === undefined) throw new Error('cannot read the indexer VmHWM')
    return { seconds, peakRssMiB: peak }
  } finally {
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 35_000)
    await exited
    clearTimeout(timer)
    await admin.disconnect()
  }
}

export interface ReferencesRound {
  backend: DetectionsBackend
  count: number
  naiveCount: number
  consumeOnlySeconds: number
  naiveSeconds: number
  indexer: IndexerProcessResult
}

/** One round: a fresh backlog, then consume-only, naive and the indexer process on it. */
export async function referencesRound(
  env: StoreEnv,
  options: { count: number; naiveCount: number; partitions: number; backend: DetectionsBackend },
): Promise<ReferencesRound> {
  const kafka = new Kafka({
    clientId: 'bench-references',
    brokers: env.brokers.split(','),
    logLevel: logLevel.NOTHING,
  })
  const id = randomUUID()
  const backlog: Backlog = { topic: `bench-ref-${id}`, partitions: options.partitions, count: options.count }
  const names = {
    groupId: `bench-ref-indexer-${id}`,
    alerts: `bench-ref-alerts-${id}`,
    dlq: `bench-ref-dlq-${id}`,
    rules: `bench-ref-rules-${id}`,
  }
  const groups = [`bench-ref-consume-${id}`, `bench-ref-naive-${id}`, names.groupId]
  const targets: TargetStore[] = []
  try {
    await produceBacklog(kafka, backlog, id)
    const consumeOnlySeconds = await consumeOnly(kafka, backlog, groups[0]!)
    const naiveCount = Math.min(options.naiveCount, options.count)
    const naive = await targetStore(env, options.backend, `bench_ref_naive_${id.replaceAll('-', '')}`)
    targets.push(naive)
    const naiveSeconds = await naivePerMessage(kafka, naive, { ...backlog, count: naiveCount }, groups[1]!)
    const target = await targetStore(env, options.backend, `bench_ref_indexer_${id.replaceAll('-', '')}`)
    targets.push(target)
    const indexer = await indexerProcess(
      kafka,
      { brokers: env.brokers, storeUrl: target.url },
      backlog,
      names,
    )
    const stored = await target.stored()
    if (stored !== options.count) throw new Error(`indexer stored ${stored} of ${options.count}`)
    return {
      backend: options.backend,
      count: options.count,
      naiveCount,
      consumeOnlySeconds,
      naiveSeconds,
      indexer,
    }
  } finally {
    const admin = kafka.admin()
    await admin.connect()
    await admin
      .deleteTopics({ topics: [backlog.topic, names.alerts, names.dlq, names.rules] })
      .catch(() => {})
    await admin.deleteGroups(groups).catch(() => {})
    await admin.disconnect()
    for (const target of targets) await target.drop()
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function referencesTable(rounds: ReferencesRound[]): string {
  const rate = (n: number, s: number) => Math.round(n / s)
  const line = (label: string, r: { b: number; c: number; i: number; rss: number }) =>
    `| ${label} | ${r.b} | ${r.c} | ${r.i} | ${(r.i / r.b).toFixed(2)} | ${(r.c / r.i).toFixed(3)} | ${r.rss.toFixed(0)} |`
  const perRound = rounds.map((r) => ({
    b: rate(r.count, r.consumeOnlySeconds),
    c: rate(r.naiveCount, r.naiveSeconds),
    i: rate(r.count, r.indexer.seconds),
    rss: r.indexer.peakRssMiB,
  }))
  const first = rounds[0]!
  const store = first.backend === 'postgres' ? 'PostgreSQL' : 'MongoDB protocol'
  return [
    `Ingest references: backlog of ${first.count} detections in ${rounds.length} round(s), one fresh topic ` +
      `per round read by three consumer groups in turn; naive stops after ${first.naiveCount}. Rates from ` +
      `joining the group; ratios per round, median of each column. (b) reads Kafka only; (c) and the indexer ` +
      `process write to ${store} (store of the run), each into a fresh database.`,
    '',
    `| round | (b) consume-only det/s (Kafka only) | (c) naive per-message det/s (${store}) | indexer process det/s (${store}) | indexer / (b) | (c) / indexer | indexer peak RSS MiB |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...perRound.map((r, i) => line(String(i + 1), r)),
    line('**median**', {
      b: median(perRound.map((r) => r.b)),
      c: median(perRound.map((r) => r.c)),
      i: median(perRound.map((r) => r.i)),
      rss: median(perRound.map((r) => r.rss)),
    }),
  ].join('\n')
}

function serviceEnv(): StoreEnv {
  const { KAFKA_BROKERS, MONGO_URL, DATABASE_URL } = process.env
  if (KAFKA_BROKERS && MONGO_URL && DATABASE_URL) {
    return { brokers: KAFKA_BROKERS, mongoUrl: MONGO_URL, databaseUrl: DATABASE_URL }
  }
  const script = `${root}scripts/services/services.sh`
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  const get = (name: string) => new RegExp(`^export ${name}=(.*)$`, 'm').exec(out)?.[1] ?? ''
  return { brokers: get('KAFKA_BROKERS'), mongoUrl: get('MONGO_URL'), databaseUrl: get('DATABASE_URL') }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: args } = parseArgs({
    options: {
      tiny: { type: 'boolean', default: false },
      count: { type: 'string' },
      'naive-count': { type: 'string' },
      rounds: { type: 'string' },
      partitions: { type: 'string', default: '3' },
      store: { type: 'string', default: 'postgres' },
    },
  })
  const tiny = args.tiny ?? false
  const count = Number(args.count ?? (tiny ? 2_000 : 100_000))
  const naiveCount = Number(args['naive-count'] ?? (tiny ? 500 : 3_000))
  const rounds = Number(args.rounds ?? (tiny ? 1 : 3))
  const backend: DetectionsBackend = args.store === 'mongodb' ? 'mongodb' : 'postgres'
  const env = serviceEnv()
  const results: ReferencesRound[] = []
  for (let i = 0; i < rounds; i++) {
    results.push(
      await referencesRound(env, { count, naiveCount, partitions: Number(args.partitions), backend }),
    )
    process.stderr.write(`references round ${i + 1}/${rounds} done\n`)
  }
  console.log(`\n${referencesTable(results)}`)
}
