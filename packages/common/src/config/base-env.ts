import { z } from 'zod'
import { detectionsStoreUrlSchema, mongoUrlSchema } from './detections-store.js'
import { logLevelSchema } from './fields.js'
import { LOCAL_DATABASE_URL, LOCAL_KAFKA_BROKERS } from './local-services.js'

/** `KAFKA_BROKERS`: comma-separated host:port pairs, blanks ignored, at least one. */
export const kafkaBrokersSchema = z
  .string()
  .default(LOCAL_KAFKA_BROKERS)
  .transform((value) =>
    value
      .split(',')
      .map((broker) => broker.trim())
      .filter((broker) => broker.length > 0),
  )
  .pipe(
    z.array(z.string().regex(/^[^\s:,]+:\d{1,5}$/, 'expected host:port')).min(1, 'at least one host:port'),
  )

/** `KAFKA_CLIENT_ID`: named after the service, so broker logs and quotas tell the services apart. */
export function kafkaClientIdSchema(service: string) {
  return z.string().min(1).default(`intellisite-${service}`)
}

/** Where each service listens by default, for the services and for the scripts that start them. */
export const SERVICE_PORTS = { api: 3000, indexer: 9101, notifier: 9102 } as const

/** Kafka refuses topic names longer than this. */
const topicName = z.string().min(1).max(249)

/**
 * The variables more than one service reads, each with its one default and one set of bounds. A
 * service picks those it reads and extends them with its own,
 * `baseEnvSchema.pick({ KAFKA_BROKERS: true }).extend({ ... })`, so a variable it does not read is
 * not accepted in silence (and the deployment tests can ask each schema what it reads).
 *
 * Keys stay the variables' names. A service's config is keyed by them (the API reads
 * `config.ALERTS_TOPIC`), so a variable is one name from `.env.example` to the code that uses it;
 * where a service wants a domain object instead (the indexer's and the notifier's camelCase
 * settings), its config.ts builds it from the parsed variables in one mapping, which tests and
 * benchmarks go through too.
 */
export const baseEnvSchema = z.object({
  KAFKA_BROKERS: kafkaBrokersSchema,
  LOG_LEVEL: logLevelSchema,
  /** The users' database (PostgreSQL): users, rules, webhooks and their deliveries. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default(LOCAL_DATABASE_URL),
  // Where detections are: the URL scheme picks the backend. MONGO_URL is the older name, still read
  // (compose sets it) when DETECTIONS_STORE_URL is not set; see chooseDetectionsStore.
  DETECTIONS_STORE_URL: detectionsStoreUrlSchema.optional(),
  MONGO_URL: mongoUrlSchema.optional(),
  DETECTIONS_TOPIC: topicName.default('intellisite.detections'),
  ALERTS_TOPIC: topicName.default('intellisite.alerts'),
  /** Undecodable detections: their original bytes, with x-error-* headers saying why. */
  DLQ_TOPIC: topicName.default('intellisite.detections.dlq'),
  /** The compacted changelog of alert rules, read to its end before any detection is classified. */
  ALERT_RULES_TOPIC: topicName.default('intellisite.alert-rules'),
  /** Partitions and replication factor of the topics a service creates when they are missing. */
  TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(10_000).default(3),
  TOPIC_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(32).default(1),
  /** Categories of the built-in rule: the API shows the rule the indexers run. */
  SUSPICIOUS_VEHICLE: z
    .string()
    .default('SUV')
    .refine((value) => value.split(',').some((entry) => entry.trim().length > 0), 'lists no category'),
})

export type BaseEnv = z.output<typeof baseEnvSchema>
