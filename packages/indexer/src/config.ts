import {
  baseEnvSchema,
  chooseDetectionsStore,
  type DetectionsStoreSource,
  hostSchema,
  kafkaClientIdSchema,
  parseEnvironment,
  portSchema,
  SERVICE_PORTS,
} from '@intellisite/common'
import type { RetentionPolicy } from '@intellisite/detections-store'
import { z } from 'zod'
import { DEFAULT_MAX_DETECTION_BYTES } from './decode-detection.js'

export { ConfigError } from '@intellisite/common'

const positiveInt = z.coerce.number().int().positive()

const HOUR_MS = 3_600_000
const UNIT_MS = { m: 60_000, h: HOUR_MS, d: 24 * HOUR_MS, w: 7 * 24 * HOUR_MS } as const

/**
 * A retention window such as `30d`, `36h` or `2w` (minutes `m`, hours `h`, days `d`, weeks `w`), or
 * `off` to keep for ever; at least an hour, since data is dropped a day at a time anyway and a
 * shorter window is more likely a typo (`30m` for `30d`) than a wish.
 */
export function retentionSchema(fallback: string) {
  return z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const text = value.trim().toLowerCase()
      if (text === 'off') return null
      const match = /^(\d+)\s*([mhdw])$/.exec(text)
      if (!match) {
        ctx.addIssue({
          code: 'custom',
          message: `'${value}' is not a duration: a whole number and m, h, d or w (e.g. 30d), or off`,
        })
        return z.NEVER
      }
      const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
      if (ms < HOUR_MS) {
        ctx.addIssue({ code: 'custom', message: `'${value}' is shorter than an hour (the shortest window)` })
        return z.NEVER
      }
      return ms
    })
}

/** Every variable the indexer reads, with defaults that work against the loopback services. */
export const configSchema = baseEnvSchema
  .pick({
    KAFKA_BROKERS: true,
    DETECTIONS_STORE_URL: true,
    MONGO_URL: true,
    LOG_LEVEL: true,
    DETECTIONS_TOPIC: true,
    ALERTS_TOPIC: true,
    DLQ_TOPIC: true,
    ALERT_RULES_TOPIC: true,
    TOPIC_PARTITIONS: true,
    TOPIC_REPLICATION_FACTOR: true,
    SUSPICIOUS_VEHICLE: true,
  })
  .extend({
    KAFKA_CLIENT_ID: kafkaClientIdSchema('indexer'),
    INDEXER_GROUP_ID: z.string().min(1).default('intellisite-indexer'),
    INDEXER_HOST: hostSchema,
    INDEXER_PORT: portSchema.default(SERVICE_PORTS.indexer),
    /** Larger detection payloads are dead-lettered as TOO_LARGE without being parsed. */
    INDEXER_MAX_MESSAGE_BYTES: positiveInt.default(DEFAULT_MAX_DETECTION_BYTES),
    /** Upper bound of one fetch per partition, hence of one batch (one bulk write, one transaction). */
    INDEXER_MAX_BYTES_PER_PARTITION: positiveInt.default(1024 * 1024),
    /** How many partitions are processed at the same time (kafkajs partitionsConsumedConcurrently). */
    INDEXER_CONCURRENCY: positiveInt.default(3),
    INDEXER_SESSION_TIMEOUT_MS: positiveInt.default(30_000),
    INDEXER_HEARTBEAT_INTERVAL_MS: positiveInt.default(3_000),
    /** A killed indexer's open transaction is aborted by its successor at once; this is the fallback. */
    INDEXER_TRANSACTION_TIMEOUT_MS: positiveInt.default(60_000),
    INDEXER_STORE_RETRY_INITIAL_MS: positiveInt.default(200),
    INDEXER_STORE_RETRY_MAX_MS: positiveInt.default(10_000),
    /** Waits between attempts at a batch whose Kafka transaction failed; each is longer than the last. */
    INDEXER_PUBLISH_RETRY_INITIAL_MS: positiveInt.default(500),
    INDEXER_PUBLISH_RETRY_MAX_MS: positiveInt.default(30_000),
    /** A partition counts as stalled (readiness 503) after this many failed attempts in a row... */
    INDEXER_STALL_FAILURES: positiveInt.default(5),
    /** ...or after this long with records waiting and nothing committed. */
    INDEXER_STALL_TIMEOUT_MS: positiveInt.default(60_000),
    /**
     * Caps one produce request's record batch below the output topics' own max.message.bytes
     * (read from the broker), e.g. for a proxy with a smaller limit.
     */
    INDEXER_PRODUCE_MAX_BATCH_BYTES: positiveInt.optional(),
    /** How long a store operation waits for a reachable server before it fails and is retried. */
    MONGO_SERVER_SELECTION_TIMEOUT_MS: positiveInt.default(5_000),
    KAFKA_RETRY_INITIAL_MS: positiveInt.default(300),
    /**
     * The longest wait between two retries of the transactional producers. kafkajs doubles its
     * wait up to 30 s by default: after a lost broker is fenced (9 s), a batch's next try could
     * come 10 to 20 s later.
     */
    KAFKA_RETRY_MAX_MS: positiveInt.default(2_000),
    KAFKA_RETRIES: z.coerce.number().int().min(0).default(8),
    /** Detections older than this are removed, a whole UTC day at a time; `off` keeps them. */
    DETECTIONS_RETENTION: retentionSchema('off'),
    /** Minute buckets of the time series (PostgreSQL); hour and day buckets answer for older ranges. */
    DETECTIONS_MINUTE_BUCKETS_RETENTION: retentionSchema('7d'),
    /** Hour buckets of the time series (PostgreSQL); day buckets are kept for ever. */
    DETECTIONS_HOUR_BUCKETS_RETENTION: retentionSchema('90d'),
    /** How often the indexer creates the coming days' partitions and applies retention. */
    DETECTIONS_MAINTENANCE_INTERVAL_MS: positiveInt.default(HOUR_MS),
  })
  .refine((env) => env.INDEXER_HEARTBEAT_INTERVAL_MS * 3 <= env.INDEXER_SESSION_TIMEOUT_MS, {
    path: ['INDEXER_HEARTBEAT_INTERVAL_MS'],
    message: 'must be at most a third of INDEXER_SESSION_TIMEOUT_MS',
  })
  .refine((env) => env.INDEXER_STORE_RETRY_INITIAL_MS <= env.INDEXER_STORE_RETRY_MAX_MS, {
    path: ['INDEXER_STORE_RETRY_INITIAL_MS'],
    message: 'must not exceed INDEXER_STORE_RETRY_MAX_MS',
  })
  .refine((env) => env.KAFKA_RETRY_INITIAL_MS <= env.KAFKA_RETRY_MAX_MS, {
    path: ['KAFKA_RETRY_INITIAL_MS'],
    message: 'must not exceed KAFKA_RETRY_MAX_MS',
  })
  .refine((env) => env.INDEXER_PUBLISH_RETRY_INITIAL_MS <= env.INDEXER_PUBLISH_RETRY_MAX_MS, {
    path: ['INDEXER_PUBLISH_RETRY_INITIAL_MS'],
    message: 'must not exceed INDEXER_PUBLISH_RETRY_MAX_MS',
  })
  .refine(
    (env) =>
      env.DETECTIONS_HOUR_BUCKETS_RETENTION === null ||
      (env.DETECTIONS_MINUTE_BUCKETS_RETENTION !== null &&
        env.DETECTIONS_MINUTE_BUCKETS_RETENTION <= env.DETECTIONS_HOUR_BUCKETS_RETENTION),
    {
      path: ['DETECTIONS_MINUTE_BUCKETS_RETENTION'],
      message: 'must not exceed DETECTIONS_HOUR_BUCKETS_RETENTION (a range with minutes must have hours)',
    },
  )

export type Env = z.infer<typeof configSchema>

export interface IndexerConfig {
  kafka: { brokers: string[]; clientId: string; retryInitialMs: number; retryMaxMs: number; retries: number }
  /** `postgres://` or `mongodb://`: the scheme picks the detections backend. */
  storeUrl: string
  /** Which variable chose `storeUrl`. */
  storeSource: DetectionsStoreSource
  storeConnectTimeoutMs: number
  logLevel: Env['LOG_LEVEL']
  topics: {
    detections: string
    alerts: string
    dlq: string
    rules: string
    partitions: number
    replicationFactor: number
  }
  groupId: string
  suspiciousVehicle: string
  http: { host: string; port: number }
  maxMessageBytes: number
  maxBytesPerPartition: number
  concurrency: number
  sessionTimeoutMs: number
  heartbeatIntervalMs: number
  transactionTimeoutMs: number
  storeRetry: { initialMs: number; maxMs: number }
  publishRetry: { initialMs: number; maxMs: number }
  stall: { failures: number; afterMs: number }
  produceMaxBatchBytes?: number
  retention: RetentionPolicy
  maintenanceIntervalMs: number
}

/**
 * The indexer's settings from its environment. `overrides` replace whole settings afterwards
 * (tests and benchmarks: their own topics and group, shorter timeouts), so they build what the
 * service would run with, not a look-alike.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  overrides: Partial<IndexerConfig> = {},
): IndexerConfig {
  const e = parseEnvironment(configSchema, env)
  const store = chooseDetectionsStore(e)
  return {
    kafka: {
      brokers: e.KAFKA_BROKERS,
      clientId: e.KAFKA_CLIENT_ID,
      retryInitialMs: e.KAFKA_RETRY_INITIAL_MS,
      retryMaxMs: e.KAFKA_RETRY_MAX_MS,
      retries: e.KAFKA_RETRIES,
    },
    storeUrl: store.url,
    storeSource: store.source,
    storeConnectTimeoutMs: e.MONGO_SERVER_SELECTION_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    topics: {
      detections: e.DETECTIONS_TOPIC,
      alerts: e.ALERTS_TOPIC,
      dlq: e.DLQ_TOPIC,
      rules: e.ALERT_RULES_TOPIC,
      partitions: e.TOPIC_PARTITIONS,
      replicationFactor: e.TOPIC_REPLICATION_FACTOR,
    },
    groupId: e.INDEXER_GROUP_ID,
    suspiciousVehicle: e.SUSPICIOUS_VEHICLE,
    http: { host: e.INDEXER_HOST, port: e.INDEXER_PORT },
    maxMessageBytes: e.INDEXER_MAX_MESSAGE_BYTES,
    maxBytesPerPartition: e.INDEXER_MAX_BYTES_PER_PARTITION,
    concurrency: e.INDEXER_CONCURRENCY,
    sessionTimeoutMs: e.INDEXER_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: e.INDEXER_HEARTBEAT_INTERVAL_MS,
    transactionTimeoutMs: e.INDEXER_TRANSACTION_TIMEOUT_MS,
    storeRetry: { initialMs: e.INDEXER_STORE_RETRY_INITIAL_MS, maxMs: e.INDEXER_STORE_RETRY_MAX_MS },
    publishRetry: { initialMs: e.INDEXER_PUBLISH_RETRY_INITIAL_MS, maxMs: e.INDEXER_PUBLISH_RETRY_MAX_MS },
    stall: { failures: e.INDEXER_STALL_FAILURES, afterMs: e.INDEXER_STALL_TIMEOUT_MS },
    retention: {
      detectionsMs: e.DETECTIONS_RETENTION,
      minuteBucketsMs: e.DETECTIONS_MINUTE_BUCKETS_RETENTION,
      hourBucketsMs: e.DETECTIONS_HOUR_BUCKETS_RETENTION,
    },
    maintenanceIntervalMs: e.DETECTIONS_MAINTENANCE_INTERVAL_MS,
    ...(e.INDEXER_PRODUCE_MAX_BATCH_BYTES !== undefined && {
      produceMaxBatchBytes: e.INDEXER_PRODUCE_MAX_BATCH_BYTES,
    }),
    ...overrides,
  }
}
