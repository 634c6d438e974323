// Kill storm: two indexer processes in one consumer group ingest a backlog while SIGKILLs at
// random moments hit either of them; each killed one is restarted at once. Afterwards the stored
// ids must equal the produced ones, every suspicious detection must have exactly one alert for a
// read_committed reader, and the stats must count each detection once.
//
//   node --conditions=development --import tsx bench/storm.ts                 # 100k detections, 10 kills
//   node --conditions=development --import tsx bench/storm.ts --count 5000 --kills 4
//   options: --count N --kills K --indexers 2 --partitions 4 --seed S --json (one JSON line instead of tables)
//
// Uses KAFKA_BROKERS and MONGO_URL (starting the local services if they are unset), on unique
// topics, group and database that it deletes afterwards. Exits 1 if anything is lost or doubled.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { type Admin, Kafka, logLevel, Partitioners } from 'kafkajs'
import { MongoClient } from 'mongodb'
import {
  createMongoDetectionsRepository,
  DETECTIONS_COLLECTION,
  detectionId,
} from '../packages/detections-store/src/index.js'
import { createDetectionGenerator, encodeDetection } from '../packages/producer/src/detection-generator.js'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'

const root = new URL('..', import.meta.url).pathname

export interface StormOptions {
  count: number
  kills: number
  indexers: number
  partitions: number
  seed: number
}

export interface StormResult {
  count: number
  kills: number
  killsMidStream: number
  indexers: number
  partitions: number
  seconds: number
  produceSeconds: number
  stored: number
  distinctStored: number
  missing: number
  unexpected: number
  alertsExpected: number
  alertsRead: number
  alertsDistinct: number
  alertsUnexpected: number
  statsExact: boolean
  killLog: { atMs: number; indexer: number; committedBefore: number }[]
  ok: boolean
}

function serviceEnv(): { brokers: string; mongoUrl: string } {
  let { KAFKA_BROKERS: brokers, MONGO_URL: mongoUrl } = process.env
  if (!brokers || !mongoUrl) {
    const script = `${root}scripts/services/services.sh`
    execFileSync('bash', [script, 'up'], { stdio: ['ignore', 2, 'inherit'] })
    const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
    brokers ??= /^export KAFKA_BROKERS=(.*)$/m.exec(out)?.[1]
    mongoUrl ??= /^export MONGO_URL=(.*)$/m.exec(out)?.[1]
  }
  if (!brokers || !mongoUrl) throw new Error('no KAFKA_BROKERS or MONGO_URL')
  return { brokers, mongoUrl }
}

/** mulberry32: a small deterministic PRNG, well mixed even for small seeds. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (message: string) => process.stderr.write(`[storm] ${message}\n`)

async function committed(admin: Admin, groupId: string, topic: string): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  return (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0)
}

export async function runStorm(options: StormOptions): Promise<StormResult> {
  const { count, kills, indexers, partitions, seed } = options
  const { brokers, mongoUrl } = serviceEnv()
  const id = randomUUID()
  const topics = {
    detections: `storm-detections-${id}`,
    alerts: `storm-alerts-${id}`,
    dlq: `storm-dlq-${id}`,
    rules: `storm-rules-${id}`,
  }
  const groupId = `storm-${id}`
  const dbName = `storm_${id.replaceAll('-', '')}`
  const kafka = new Kafka({
    clientId: 'storm',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 8 },
  })
  const admin = kafka.admin()
  await admin.connect()
  const mongo = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5_000 })
  await mongo.connect()
  const db = mongo.db(dbName)
  const children = new Set<ChildProcess>()
  try {
    await admin.createTopics({
      topics: Object.values(topics).map((topic) => ({ topic, numPartitions: partitions })),
      waitForLeaders: false,
    })
    for (;;) {
      const metadata = await admin
        .fetchTopicMetadata({ topics: Object.values(topics) })
        .catch(() => undefined)
      if (metadata?.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
        break
      await sleep(200)
    }

    // The backlog: generated detections, their ids computed from where Kafka put them.
    const producedAt = performance.now()
    const generator = createDetectionGenerator({ seed: String(seed) })
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    })
    await producer.connect()
    const expectedIds: string[] = []
    const suspiciousIds = new Set<string>()
    const makes = new Map<string, number>()
    const SEND = 500
    for (let start = 0; start < count; start += SEND) {
      const timestamp = Date.now()
      const batch = Array.from({ length: Math.min(SEND, count - start) }, () => generator())
      const messages = batch.map((detection, i) => ({
        value: encodeDetection(detection),
        partition: (start + i) % partitions,
        timestamp: String(timestamp),
      }))
      const results = await producer.send({ topic: topics.detections, messages })
      const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]))
      batch.forEach((detection, i) => {
        const partition = messages[i]!.partition
        const offset = next.get(partition)!
        next.set(partition, offset + 1)
        const docId = detectionId({ topic: topics.detections, partition, offset, timestamp })
        expectedIds.push(docId)
        const make = detection.Make.trim().toLowerCase()
        makes.set(make, (makes.get(make) ?? 0) + 1)
        if (detection.Category.split(',').some((t) => t.trim().toLowerCase() === 'suv'))
          suspiciousIds.add(docId)
      })
    }
    await producer.disconnect()
    const produceSeconds = (performance.now() - producedAt) / 1000
    log(`produced ${count} detections in ${produceSeconds.toFixed(1)} s`)

    const env = (n: number): Record<string, string> => ({
      PATH: process.env.PATH ?? '',
      KAFKA_BROKERS: brokers,
      KAFKA_CLIENT_ID: `storm-indexer-${n}`,
      DETECTIONS_STORE_URL: new URL(`/${dbName}`, mongoUrl).toString(),
      LOG_LEVEL: process.env.STORM_LOG_LEVEL ?? 'fatal',
      DETECTIONS_TOPIC: topics.detections,
      ALERTS_TOPIC: topics.alerts,
      DLQ_TOPIC: topics.dlq,
      ALERT_RULES_TOPIC: topics.rules,
      TOPIC_PARTITIONS: String(partitions),
      INDEXER_GROUP_ID: groupId,
      INDEXER_PORT: '0',
      INDEXER_SESSION_TIMEOUT_MS: '6000',
      INDEXER_HEARTBEAT_INTERVAL_MS: '1000',
      KAFKA_RETRY_INITIAL_MS: '100',
      // Small batches: many transactions in flight, so a kill lands between store and commit often.
      INDEXER_MAX_BYTES_PER_PARTITION: String(16 * 1024),
    })
    const start = (n: number): ChildProcess => {
      const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'packages/indexer/src/main.ts'], {
        cwd: root,
        env: env(n),
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      children.add(child)
      child.once('exit', () => children.delete(child))
      return child
    }
    const running = Array.from({ length: indexers }, (_, n) => start(n))

    const started = performance.now()
    // The storm starts once the indexers are at work (their start-up takes a few seconds).
    while ((await committed(admin, groupId, topics.detections)) === 0) await sleep(100)
    log(`first offsets committed after ${((performance.now() - started) / 1000).toFixed(1)} s`)
    const rand = random(seed)
    // Random moments of the stream, not of the clock (its speed depends on the machine's load):
    // each kill waits for a random share of the backlog to be committed, then a random delay.
    const thresholds = Array.from({ length: kills }, () => Math.floor(count * (0.05 + rand() * 0.85))).sort(
      (a, b) => a - b,
    )
    const killLog: StormResult['killLog'] = []
    for (let k = 0; k < kills; k++) {
      for (;;) {
        const done = await committed(admin, groupId, topics.detections)
        if (done >= thresholds[k]! || done === count) break
        await sleep(50)
      }
      await sleep(rand() * 500)
      const n = Math.floor(rand() * indexers)
      const victim = running[n]!
      const before = await committed(admin, groupId, topics.detections)
      victim.kill('SIGKILL')
      await new Promise((resolve) =>
        victim.exitCode !== null || victim.signalCode !== null ? resolve(null) : victim.once('exit', resolve),
      )
      killLog.push({ atMs: Math.round(performance.now() - started), indexer: n, committedBefore: before })
      log(
        `kill ${k + 1}/${kills}: indexer ${n} at ${((performance.now() - started) / 1000).toFixed(1)} s, ${before}/${count} committed`,
      )
      running[n] = start(n)
    }

    const deadline = Date.now() + Math.max(300_000, count * 20)
    for (;;) {
      const done = await committed(admin, groupId, topics.detections)
      if (done === count) break
      if (Date.now() > deadline)
        throw new Error(`only ${done}/${count} offsets committed before the deadline`)
      await sleep(500)
    }
    const seconds = (performance.now() - started) / 1000
    log(`every offset committed after ${seconds.toFixed(1)} s`)
    await Promise.all(
      running.map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve(null)
            child.once('exit', resolve)
            child.kill('SIGTERM')
          }),
      ),
    )

    const storedIds = (
      await db
        .collection(DETECTIONS_COLLECTION)
        .find({}, { projection: { _id: 1 } })
        .toArray()
    ).map((d) => String(d._id))
    const stored = new Set(storedIds)
    const expected = new Set(expectedIds)
    const missing = expectedIds.filter((x) => !stored.has(x)).length
    const unexpected = storedIds.filter((x) => !expected.has(x)).length

    const stats = await createMongoDetectionsRepository(db).stats('make')
    const statsExact =
      stats.total === count &&
      stats.items.length === makes.size &&
      stats.items.every((item) => makes.get(item.value.trim().toLowerCase()) === item.count)

    // Every alert, as a read_committed reader sees it: until the expected count and 3 s of quiet.
    // The reader's own group may rebalance and hand it records again: a record is counted once by
    // its coordinates, so only alerts written twice (two records) count as duplicates.
    const records = new Map<string, string>()
    const reader = kafka.consumer({ groupId: `storm-reader-${id}`, maxWaitTimeInMs: 200 })
    await reader.connect()
    await reader.subscribe({ topic: topics.alerts, fromBeginning: true })
    let lastAt = Date.now()
    let redelivered = 0
    await reader.run({
      eachMessage: async ({ partition, message }) => {
        lastAt = Date.now()
        const at = `${partition}:${message.offset}`
        if (records.has(at)) redelivered++
        records.set(at, message.key?.toString() ?? '')
      },
    })
    const readDeadline = Date.now() + 120_000
    while (
      !(records.size >= suspiciousIds.size && Date.now() - lastAt > 3_000) &&
      Date.now() < readDeadline
    ) {
      await sleep(200)
    }
    await reader.disconnect()
    await admin.deleteGroups([`storm-reader-${id}`]).catch(() => {})
    if (redelivered > 0) log(`the reader was handed ${redelivered} records twice (its own rebalance)`)
    const alertIds = [...records.values()]
    const alertsDistinct = new Set(alertIds).size
    if (alertsDistinct !== alertIds.length) {
      // Where the doubles are: alerts-topic coordinates, and the detection's source partition.
      const seen = new Map<string, string[]>()
      for (const [at, x] of records) seen.set(x, [...(seen.get(x) ?? []), at])
      const source = new Map(expectedIds.map((x, i) => [x, i % partitions]))
      const doubles = [...seen].filter(([, at]) => at.length > 1)
      log(`${doubles.length} alerts written more than once, e.g.:`)
      for (const [x, at] of doubles.slice(0, 10))
        log(`  ${x} from detections/${source.get(x)} at alerts ${at.join(', ')}`)
    }
    const alertsUnexpected = alertIds.filter((x) => !suspiciousIds.has(x)).length

    const result: StormResult = {
      count,
      kills,
      killsMidStream: killLog.filter((k) => k.committedBefore < count).length,
      indexers,
      partitions,
      seconds,
      produceSeconds,
      stored: storedIds.length,
      distinctStored: stored.size,
      missing,
      unexpected,
      alertsExpected: suspiciousIds.size,
      alertsRead: alertIds.length,
      alertsDistinct,
      alertsUnexpected,
      statsExact,
      killLog,
      ok: false,
    }
    result.ok =
      result.stored === count &&
      result.distinctStored === count &&
      missing === 0 &&
      unexpected === 0 &&
      result.alertsRead === suspiciousIds.size &&
      alertsDistinct === suspiciousIds.size &&
      alertsUnexpected === 0 &&
      statsExact
    return result
  } finally {
    for (const child of children) child.kill('SIGKILL')
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {})
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect()
    await db.dropDatabase().catch(() => {})
    await mongo.close()
  }
}

export function stormTables(r: StormResult): string {
  return [
    `Kill storm: ${r.indexers} indexer processes in one group, ${r.partitions} partitions, ${r.count} detections, ` +
      `${r.kills} SIGKILLs at random moments (${r.killsMidStream} before the backlog was fully committed), each ` +
      `indexer restarted at once. Backlog produced in ${r.produceSeconds.toFixed(1)} s before the indexers start.`,
    '',
    '| detections | kills (mid-stream) | seconds to all committed | stored | distinct ids | missing | unexpected | alerts expected | alerts read | distinct alerts | stats exact | result |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
    `| ${r.count} | ${r.kills} (${r.killsMidStream}) | ${r.seconds.toFixed(1)} | ${r.stored} | ${r.distinctStored} | ` +
      `${r.missing} | ${r.unexpected} | ${r.alertsExpected} | ${r.alertsRead} | ${r.alertsDistinct} | ` +
      `${r.statsExact ? 'yes' : 'NO'} | ${r.ok ? 'exactly once' : '**FAILED**'} |`,
    '',
    '| kill | at s | indexer | offsets committed before |',
    '|---:|---:|---:|---:|',
    ...r.killLog.map(
      (k, i) => `| ${i + 1} | ${(k.atMs / 1000).toFixed(1)} | ${k.indexer} | ${k.committedBefore} |`,
    ),
  ].join('\n')
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      count: { type: 'string', default: '100000' },
      kills: { type: 'string', default: '10' },
      indexers: { type: 'string', default: '2' },
      partitions: { type: 'string', default: '4' },
      seed: { type: 'string', default: String(Date.now() % 100_000) },
      json: { type: 'boolean', default: false },
    },
  })
  const result = await runStorm({
    count: Number(args.count),
    kills: Number(args.kills),
    indexers: Number(args.indexers),
    partitions: Number(args.partitions),
    seed: Number(args.seed),
  })
  process.stdout.write(args.json ? `${JSON.stringify(result)}\n` : `${stormTables(result)}\n`)
  if (!result.ok) process.exitCode = 1
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
