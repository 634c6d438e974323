// Builds real Kafka topics, a real detections store (PostgreSQL unless a test asks for MongoDB) and
// real indexers for the tests, each with unique names and their own cleanup.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { RULES_TOPIC_CONFIG, type RuleRecordMessage } from '@intellisite/alert-rules'
import { waitForLeaders } from '@intellisite/common'
import {
  type Alert,
  type DetectionsBackend,
  type DetectionsRepository,
  detectionId,
} from '@intellisite/detections-store'
import { CompressionTypes, type IHeaders, type Kafka, Partitioners } from 'kafkajs'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { expect, onTestFinished } from 'vitest'
import { createTestStore, type TestStore } from '../../../test/support/detections-stores.js'
import { requireEnv } from '../../../test/support/env.js'
import { testKafka } from '../../../test/support/kafka.js'
import { TS_NODE_FLAGS } from '../../../test/support/node-flags.js'
import { waitFor } from '../../../test/support/wait.js'
import { loadConfig } from '../src/config.js'
import type { IndexerSettings } from '../src/indexer.js'
import { createIndexer, type Indexer } from '../src/indexer.js'
import { createIndexerMetrics, type IndexerMetrics } from '../src/metrics.js'

export { requireEnv } from '../../../test/support/env.js'
export { testKafka } from '../../../test/support/kafka.js'
export { waitFor } from '../../../test/support/wait.js'

export const PARTITIONS = 3
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface Pipeline {
  /** The broker list this pipeline (and an indexer given `indexerEnv`) talks to. */
  brokers: string
  kafka: Kafka
  topics: { detections: string; alerts: string; dlq: string; rules: string }
  groupId: string
  /** This test's detections store; `store.storedIds()` etc. read it independently of the counters. */
  store: TestStore
  repository: DetectionsRepository
  /** DETECTIONS_STORE_URL for this test's store, optionally through another host:port (a proxy). */
  storeUrl(via?: { host: string; port: number }): string
}

/**
 * Unique topics, group and database; everything is deleted when the test finishes. On the shared
 * broker unless `brokers` names another one (e.g. a test's private broker).
 */
export async function createPipeline({
  brokers = requireEnv('KAFKA_BROKERS'),
  backend = 'postgres',
}: {
  brokers?: string
  backend?: DetectionsBackend
} = {}): Promise<Pipeline> {
  const id = randomUUID()
  const kafka = testKafka('indexer-test', brokers)
  const topics = {
    detections: `test-detections-${id}`,
    alerts: `test-alerts-${id}`,
    dlq: `test-dlq-${id}`,
    rules: `test-rules-${id}`,
  }
  const store = await createTestStore(backend, 'indexer')
  onTestFinished(async () => {
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {})
    await admin.deleteGroups([`test-group-${id}`]).catch(() => {})
    await admin.disconnect()
    await store.drop()
  })
  return {
    brokers,
    kafka,
    topics,
    groupId: `test-group-${id}`,
    store,
    repository: store.repository,
    storeUrl: (via) => store.url(via),
  }
}

/**
 * Creates the pipeline's topics up front, for tests that produce before an indexer starts; the
 * rules changelog as the indexer creates it (compacted), with `rulesPartitions` partitions.
 */
export async function createTopics(pipeline: Pipeline, { rulesPartitions = 1 } = {}): Promise<void> {
  const admin = pipeline.kafka.admin()
  await admin.connect()
  try {
    const { rules, ...others } = pipeline.topics
    await admin.createTopics({
      topics: [
        ...Object.values(others).map((topic) => ({ topic, numPartitions: PARTITIONS })),
        { topic: rules, numPartitions: rulesPartitions, configEntries: [...RULES_TOPIC_CONFIG] },
      ],
      waitForLeaders: false,
    })
    // Not kafkajs's waitForLeaders: on a cluster it fails while a broker has yet to learn the topic.
    await waitForLeaders(admin, Object.values(pipeline.topics))
  } finally {
    await admin.disconnect()
  }
}

/** Sum of the group's committed offsets on the detections topic (records fully processed). */
export async function committedCount(pipeline: Pipeline): Promise<number> {
  const admin = pipeline.kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchOffsets({
      groupId: pipeline.groupId,
      topics: [pipeline.topics.detections],
    })
    return (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0)
  } finally {
    await admin.disconnect()
  }
}

/**
 * The settings the indexer process would load from `indexerEnv` (short sessions so a killed member
 * is replaced fast), with quicker publish retries; `overrides` replace whole settings.
 */
export function testSettings(pipeline: Pipeline, overrides: Partial<IndexerSettings> = {}): IndexerSettings {
  const env = indexerEnv(pipeline, {
    INDEXER_CONCURRENCY: String(PARTITIONS),
    INDEXER_PUBLISH_RETRY_INITIAL_MS: '100',
    INDEXER_PUBLISH_RETRY_MAX_MS: '1000',
  })
  return loadConfig(env, overrides)
}

/** Environment for `src/main.ts` run as a child process against this pipeline. */
export function indexerEnv(
  pipeline: Pipeline,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    KAFKA_BROKERS: pipeline.brokers,
    DETECTIONS_STORE_URL: pipeline.storeUrl(),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
    DETECTIONS_TOPIC: pipeline.topics.detections,
    ALERTS_TOPIC: pipeline.topics.alerts,
    DLQ_TOPIC: pipeline.topics.dlq,
    ALERT_RULES_TOPIC: pipeline.topics.rules,
    TOPIC_PARTITIONS: String(PARTITIONS),
    INDEXER_GROUP_ID: pipeline.groupId,
    INDEXER_PORT: '0',
    INDEXER_SESSION_TIMEOUT_MS: '6000',
    INDEXER_HEARTBEAT_INTERVAL_MS: '1000',
    INDEXER_STORE_RETRY_INITIAL_MS: '50',
    INDEXER_STORE_RETRY_MAX_MS: '500',
    KAFKA_RETRY_INITIAL_MS: '100',
    ...overrides,
  }
}

export interface RunningIndexer {
  indexer: Indexer
  metrics: IndexerMetrics
  registry: Registry
  stop(): Promise<void>
}

/** The real indexer in this process; stopped when the test finishes if it did not stop it. */
export async function startIndexer(
  pipeline: Pipeline,
  overrides: Partial<IndexerSettings> = {},
  repository: DetectionsRepository = pipeline.repository,
  /** A Kafka client standing in for the real one (to inject faults), and where fatal errors go. */
  seams: { kafka?: Kafka; onFatalError?: (err: Error) => void } = {},
): Promise<RunningIndexer> {
  const registry = new Registry()
  const metrics = createIndexerMetrics(registry)
  const indexer = createIndexer({
    kafka: seams.kafka ?? testKafka('indexer', pipeline.brokers),
    repository,
    config: testSettings(pipeline, overrides),
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics,
    onFatalError: seams.onFatalError,
  })
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await indexer.stop()
  }
  onTestFinished(stop)
  await indexer.start()
  await waitFor(() => indexer.ready(), { timeoutMs: 20_000, what: 'indexer joined its group' })
  return { indexer, metrics, registry, stop }
}

/** The indexer process (main.ts's composition), with the test-only INDEXER_FAILPOINT honoured. */
export function spawnIndexer(env: Record<string, string>): ChildProcess {
  const child = spawn(
    process.execPath,
    [...TS_NODE_FLAGS, 'packages/indexer/test/support/indexer-with-failpoints.ts'],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  )
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

export interface Produced {
  partition: number
  offset: number
  timestamp: number
  value: Buffer | null
}

/**
 * Sends values in small produce requests (one record batch each), so the consumer sees many
 * small batches. Returns each record's coordinates.
 */
export async function produce(
  kafka: Kafka,
  topic: string,
  values: readonly (string | Buffer | null)[],
  { perSend = 20, headers }: { perSend?: number; headers?: IHeaders } = {},
): Promise<Produced[]> {
  // Idempotent, so a retried send cannot write a record batch twice into the backlog.
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  })
  await producer.connect()
  const produced: Produced[] = []
  try {
    for (let start = 0; start < values.length; start += perSend) {
      const slice = values.slice(start, start + perSend)
      const messages = slice.map((value, i) => ({
        value,
        partition: (start + i) % PARTITIONS,
        timestamp: String(Date.now()),
        ...(headers && { headers }),
      }))
      const results = await producer.send({ topic, messages })
      // kafkajs reports the base offset per partition; records of a partition follow in order.
      const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]))
      for (const message of messages) {
        const offset = next.get(message.partition)
        if (offset === undefined) throw new Error('no offset for partition')
        next.set(message.partition, offset + 1)
        produced.push({
          partition: message.partition,
          offset,
          timestamp: Number(message.timestamp),
          value: message.value === null ? null : Buffer.from(message.value),
        })
      }
    }
  } finally {
    await producer.disconnect()
  }
  return produced
}

/**
 * Writes rule records (`ruleRecord(rule)`, `ruleTombstone(id)`) to the pipeline's rules changelog
 * as the API does: keyed by rule id, gzip-compressed, in order. `partition` pins them (the topic
 * may have several partitions; a rule's records must share one).
 */
export async function publishRules(
  pipeline: Pipeline,
  records: readonly (RuleRecordMessage | { key: string | null; value: string | Buffer | null })[],
  { partition }: { partition?: number } = {},
): Promise<void> {
  const producer = pipeline.kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  })
  await producer.connect()
  try {
    await producer.send({
      topic: pipeline.topics.rules,
      compression: CompressionTypes.GZIP,
      messages: records.map((record) => ({ ...record, ...(partition !== undefined && { partition }) })),
    })
  } finally {
    await producer.disconnect()
  }
}

export interface ConsumedRecord {
  partition: number
  offset: string
  key: string | null
  value: Buffer | null
  headers: Record<string, string>
}

/**
 * Reads a topic from the beginning as a read_committed reader (kafkajs's default) until `count`
 * records arrived and nothing more came for `quietMs`, so extra records fail the test too. A record
 * is one position of the topic: if the reader's own group rebalances (a loaded machine) and hands
 * it records again, they are not counted twice; an alert written twice is two records.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  count: number,
  { timeoutMs = 30_000, quietMs = 1_500 } = {},
): Promise<ConsumedRecord[]> {
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}`, maxWaitTimeInMs: 200 })
  const records: ConsumedRecord[] = []
  const seen = new Set<string>()
  let lastAt = Date.now()
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        lastAt = Date.now()
        const at = `${partition}:${message.offset}`
        if (seen.has(at)) return
        seen.add(at)
        const headers: Record<string, string> = {}
        for (const [name, value] of Object.entries(message.headers ?? {})) {
          headers[name] = String(value)
        }
        records.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value,
          headers,
        })
      },
    })
    await waitFor(() => records.length >= count && Date.now() - lastAt >= quietMs, {
      timeoutMs,
      what: () => `${count} records on ${topic} (got ${records.length})`,
    })
  } finally {
    await consumer.disconnect()
  }
  return records
}

export function parseAlerts(records: readonly ConsumedRecord[]): Alert[] {
  return records.map((record) => JSON.parse(String(record.value)) as Alert)
}

const MAKES = ['Toyota', 'MAZDA', 'smart', 'Ford', 'Chevrolet', 'BMW', 'Land Rover', 'mazda']
const CATEGORIES = ['SUV', 'Sedan', 'SUV, Pickup', 'Wagon, SUV', 'suv', 'Pickup', 'Sedan, Wagon', 'Coupe']

export interface DetectionFixture {
  Year: number
  Make: string
  Model: string
  Category: string
}

/** Deterministic detections with the real stream's quirks: compound categories, odd casing. */
export function detections(count: number, seed = 0): DetectionFixture[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + seed
    return {
      Year: 1990 + (n % 35),
      Make: MAKES[n % MAKES.length] ?? 'Toyota',
      Model: `Model ${n % 13}`,
      Category: CATEGORIES[(n * 7 + 3) % CATEGORIES.length] ?? 'SUV',
    }
  })
}

export function isSuspicious(category: string): boolean {
  return category.split(',').some((token) => token.trim().toLowerCase() === 'suv')
}

/** A backlog of `total` detections produced in small sends, so indexers see many small batches. */
export async function produceBacklog(pipeline: Pipeline, total: number) {
  const fixtures = detections(total)
  const produced = await produce(
    pipeline.kafka,
    pipeline.topics.detections,
    fixtures.map((d) => JSON.stringify(d)),
    { perSend: 30 },
  )
  return { fixtures, produced }
}

/**
 * The delivery guarantee, as a user observes it: one document per produced record, exactly one
 * alert per suspicious detection for a read_committed reader, stats counting each detection once.
 */
export async function expectExactlyOnce(
  pipeline: Pipeline,
  fixtures: readonly DetectionFixture[],
  produced: readonly Produced[],
): Promise<void> {
  const expectedIds = produced.map((p) => detectionId({ topic: pipeline.topics.detections, ...p }))
  const ids = await pipeline.store.storedIds()
  expect(ids).toHaveLength(fixtures.length)
  expect(new Set(ids)).toEqual(new Set(expectedIds))

  const suspiciousIds = expectedIds.filter((_, i) => isSuspicious(fixtures[i]!.Category))
  const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, suspiciousIds.length))
  expect(alerts).toHaveLength(suspiciousIds.length)
  expect(new Set(alerts.map((a) => a.id))).toEqual(new Set(suspiciousIds))

  const expected = new Map<string, number>()
  for (const d of fixtures) expected.set(d.Make.toLowerCase(), (expected.get(d.Make.toLowerCase()) ?? 0) + 1)
  const stats = await pipeline.repository.stats('make')
  expect(stats.total).toBe(fixtures.length)
  expect(new Map(stats.items.map((item) => [item.value.toLowerCase(), item.count]))).toEqual(expected)
}
