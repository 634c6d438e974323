import { ALERT_RULES_TOPIC } from '@intellisite/alert-rules'
import {
  chooseDetectionsStore,
  type DetectionsStoreSource,
  kafkaBrokersSchema,
  LOCAL_DETECTIONS_STORE_URL,
  logLevelSchema,
  parseEnvironment,
} from '@intellisite/common'
import { z } from 'zod'

export { ConfigError } from '@intellisite/common'

/** PostgreSQL beside the users' database on the local services; created on first use. */
export const DEFAULT_DETECTIONS_STORE_URL = LOCAL_DETECTIONS_STORE_URL

const positiveInt = z.coerce.number().int().positive()

/** Every variable the indexer reads, with defaults that work against the loopback services. */
export const configSchema = z
  .object({
    KAFKA_BROKERS: kafkaBrokersSchema,
    KAFKA_CLIENT_ID: z.string().min(1).default('intellisite-indexer'),
    // Where detections are: the URL scheme picks the backend. MONGO_URL is the older name, still
    // read (compose sets it) when DETECTIONS_STORE_URL is not set, with a warning at start.
    DETECTIONS_STORE_URL: z.url({ protocol: /^(postgres(ql)?|mongodb(\+srv)?)$/ }).optional(),
    MONGO_URL: z.url({ protocol: /^mongodb(\+srv)?$/ }).optional(),
    LOG_LEVEL: logLevelSchema,
    DETECTIONS_TOPIC: z.string().min(1).default('intellisite.detections'),
    ALERTS_TOPIC: z.string().min(1).default('intellisite.alerts'),
    DLQ_TOPIC: z.string().min(1).default('intellisite.detections.dlq'),
    /** The compacted changelog of alert rules, read to its end before any detection is classified. */
    ALERT_RULES_TOPIC: z.string().min(1).default(ALERT_RULES_TOPIC),
    TOPIC_PARTITIONS: positiveInt.default(3),
    TOPIC_REPLICATION_FACTOR: positiveInt.default(1),
    INDEXER_GROUP_ID: z.string().min(1).default('intellisite-indexer'),
    SUSPICIOUS_VEHICLE: z
      .string()
      .default('SUV')
      .refine((value) => value.split(',').some((entry) => entry.trim().length > 0), 'lists no category'),
    INDEXER_HOST: z.string().min(1).default('0.0.0.0'),
    INDEXER_PORT: z.coerce.number().int().min(0).max(65535).default(9101),
    /** Larger detection payloads are dead-lettered as TOO_LARGE without being parsed. */
    INDEXER_MAX_MESSAGE_BYTES: positiveInt.default(64 * 1024),
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
}

export function loadConfig(env: Record<string, string | undefined>): IndexerConfig {
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
    ...(e.INDEXER_PRODUCE_MAX_BATCH_BYTES !== undefined && {
      produceMaxBatchBytes: e.INDEXER_PRODUCE_MAX_BATCH_BYTES,
    }),
  }
}
