// Ingest references for bench/ingest.ts measured side by side on one backlog per
// round (unique topic, produced before anything reads it; every reader is a fresh consumer group):
//   (b) consume-only: the indexer's client (kafkajs) and fetch settings, eachBatch, no processing —
//       the broker/client limit;
//   (c) naive: eachMessage, one insertOne per message, autocommit — the common approach;
//   the real indexer as a process (packages/indexer/src/main.ts), whose peak RSS (VmHWM) is read
//   from /proc before it exits.
//
//   node --conditions=development --import tsx bench/ingest-references.ts [--count 100000]
//     [--naive-count 3000] [--rounds 3] [--partitions 3] [--tiny]
//
// Also importable: produceBacklog, consumeOnly, naivePerMessage, indexerProcess.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type Admin, type ConsumerRunConfig, Kafka, logLevel } from 'kafkajs'
import { type Db, MongoClient } from 'mongodb'
import {
  createMongoDetectionsRepository,
  detectionMessageSchema,
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

/**
 * The common approach: eachMessage, parse, one insertOne per detection, kafkajs autocommit. Stops
 * after `count` inserts (it is too slow for the whole backlog); seconds from joining the group.
 */
export async function naivePerMessage(
  kafka: Kafka,
  db: Db,
  backlog: Backlog,
  groupId: string,
): Promise<number> {
  const repository = createMongoDetectionsRepository(db)
  await repository.ensureIndexes()
  const collection = repository.collection
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
      await collection.insertOne(toDetectionDocument(parsed, coords, parsed.Category.includes('SUV')))
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
  env: { brokers: string; mongoUrl: string },
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
      DETECTIONS_STORE_URL: env.mongoUrl,
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
  count: number
  naiveCount: number
  consumeOnlySeconds: number
  naiveSeconds: number
  indexer: IndexerProcessResult
}

/** One round: a fresh backlog, then consume-only, naive and the indexer process on it. */
export async function referencesRound(
  env: { brokers: string; mongoUrl: string },
  options: { count: number; naiveCount: number; partitions: number },
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
  const naiveDb = `bench_ref_naive_${id.replaceAll('-', '')}`
  const indexerDb = `bench_ref_indexer_${id.replaceAll('-', '')}`
  const mongo = new MongoClient(env.mongoUrl)
  await mongo.connect()
  try {
    await produceBacklog(kafka, backlog, id)
    const consumeOnlySeconds = await consumeOnly(kafka, backlog, groups[0]!)
    const naiveCount = Math.min(options.naiveCount, options.count)
    const naiveSeconds = await naivePerMessage(
      kafka,
      mongo.db(naiveDb),
      { ...backlog, count: naiveCount },
      groups[1]!,
    )
    const url = new URL(env.mongoUrl)
    url.pathname = `/${indexerDb}`
    const indexer = await indexerProcess(
      kafka,
      { brokers: env.brokers, mongoUrl: url.toString() },
      backlog,
      names,
    )
    const stored = await mongo.db(indexerDb).collection('detections').estimatedDocumentCount()
    if (stored !== options.count) throw new Error(`indexer stored ${stored} of ${options.count}`)
    return { count: options.count, naiveCount, consumeOnlySeconds, naiveSeconds, indexer }
  } finally {
    const admin = kafka.admin()
    await admin.connect()
    await admin
      .deleteTopics({ topics: [backlog.topic, names.alerts, names.dlq, names.rules] })
      .catch(() => {})
    await admin.deleteGroups(groups).catch(() => {})
    await admin.disconnect()
    for (const name of [naiveDb, indexerDb]) {
      await mongo
        .db(name)
        .dropDatabase()
        .catch(() => {})
    }
    await mongo.close()
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
  return [
    `Ingest references: backlog of ${first.count} detections in ${rounds.length} round(s), one fresh topic ` +
      `per round read by three consumer groups in turn; naive stops after ${first.naiveCount}. Rates from ` +
      'joining the group; ratios per round, median of each column.',
    '',
    '| round | (b) consume-only det/s | (c) naive per-message det/s | indexer process det/s | indexer / (b) | (c) / indexer | indexer peak RSS MiB |',
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

function serviceEnv(): { brokers: string; mongoUrl: string } {
  if (process.env.KAFKA_BROKERS && process.env.MONGO_URL) {
    return { brokers: process.env.KAFKA_BROKERS, mongoUrl: process.env.MONGO_URL }
  }
  const script = `${root}scripts/services/services.sh`
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  const get = (name: string) => new RegExp(`^export ${name}=(.*)$`, 'm').exec(out)?.[1] ?? ''
  return { brokers: get('KAFKA_BROKERS'), mongoUrl: get('MONGO_URL') }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: args } = parseArgs({
    options: {
      tiny: { type: 'boolean', default: false },
      count: { type: 'string' },
      'naive-count': { type: 'string' },
      rounds: { type: 'string' },
      partitions: { type: 'string', default: '3' },
    },
  })
  const tiny = args.tiny ?? false
  const count = Number(args.count ?? (tiny ? 2_000 : 100_000))
  const naiveCount = Number(args['naive-count'] ?? (tiny ? 500 : 3_000))
  const rounds = Number(args.rounds ?? (tiny ? 1 : 3))
  const env = serviceEnv()
  const results: ReferencesRound[] = []
  for (let i = 0; i < rounds; i++) {
    results.push(await referencesRound(env, { count, naiveCount, partitions: Number(args.partitions) }))
    process.stderr.write(`references round ${i + 1}/${rounds} done\n`)
  }
  console.log(`\n${referencesTable(results)}`)
}
