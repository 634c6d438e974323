import {
  baseEnvSchema,
  booleanSchema,
  durationSchema,
  hostSchema,
  kafkaClientIdSchema,
  type logLevelSchema,
  parseDuration,
  parseEnvironment,
  portSchema,
  SERVICE_PORTS,
} from '@intellisite/common'
import { z } from 'zod'

export { ConfigError } from '@intellisite/common'

const positiveInt = z.coerce.number().int().positive()
const duration = (fallback: string) => z.string().default(fallback).pipe(durationSchema)

/** The waits between attempts, e.g. `5s,5m,30m,2h,5h,10h`: one retry per entry, then the delivery fails. */
const retryScheduleSchema = z
  .string()
  .default('5s,5m,30m,2h,5h,10h')
  .transform((text, ctx) => {
    const waits = text
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '')
      .map(parseDuration)
    if (waits.length === 0 || waits.some((ms) => Number.isNaN(ms))) {
      ctx.addIssue({ code: 'custom', message: 'expected durations separated by commas, e.g. 5s,5m,30m,2h' })
      return z.NEVER
    }
    return waits
  })

/** Every variable the notifier reads, with defaults that work against the loopback services. */
export const configSchema = baseEnvSchema
  .pick({
    KAFKA_BROKERS: true,
    LOG_LEVEL: true,
    // The API's users database, where webhooks and their deliveries live (the API migrates it).
    DATABASE_URL: true,
    ALERTS_TOPIC: true,
    TOPIC_PARTITIONS: true,
    TOPIC_REPLICATION_FACTOR: true,
  })
  .extend({
    KAFKA_CLIENT_ID: kafkaClientIdSchema('notifier'),
    NOTIFIER_GROUP_ID: z.string().min(1).default('intellisite-notifier'),
    /** A new consumer group starts at the topic's end (alerts raised from now on) unless this is true. */
    NOTIFIER_FROM_BEGINNING: booleanSchema,
    /** How soon the group gives a dead notifier's partitions to another (heartbeats every tenth of it). */
    NOTIFIER_SESSION_TIMEOUT: duration('30s'),
    NOTIFIER_HOST: hostSchema,
    NOTIFIER_PORT: portSchema.default(SERVICE_PORTS.notifier),
    WEBHOOK_ALLOW_PRIVATE: booleanSchema,
    WEBHOOK_RETRY_SCHEDULE: retryScheduleSchema,
    WEBHOOK_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
    WEBHOOK_CONNECT_TIMEOUT: duration('5s'),
    WEBHOOK_RESPONSE_TIMEOUT: duration('10s'),
    WEBHOOK_TOTAL_TIMEOUT: duration('15s'),
    WEBHOOK_MAX_RESPONSE_BYTES: positiveInt.default(64 * 1024),
    WEBHOOK_CONCURRENCY: positiveInt.default(128),
    WEBHOOK_ENDPOINT_CONCURRENCY: positiveInt.default(8),
    WEBHOOK_POLL_INTERVAL: duration('250ms'),
    WEBHOOK_DISABLE_AFTER_FAILURES: positiveInt.default(20),
    WEBHOOK_DISABLE_MIN_SPAN: duration('5m'),
    WEBHOOK_DISABLE_FAILING_FOR: duration('24h'),
  })
  .refine((env) => env.WEBHOOK_ENDPOINT_CONCURRENCY <= env.WEBHOOK_CONCURRENCY, {
    path: ['WEBHOOK_ENDPOINT_CONCURRENCY'],
    message: 'must not exceed WEBHOOK_CONCURRENCY',
  })
  .refine((env) => env.WEBHOOK_RESPONSE_TIMEOUT <= env.WEBHOOK_TOTAL_TIMEOUT, {
    path: ['WEBHOOK_RESPONSE_TIMEOUT'],
    message: 'must not exceed WEBHOOK_TOTAL_TIMEOUT',
  })

export interface RetryPolicy {
  /** Wait before retry n+1 after attempt n failed; the delivery fails for good after the last. */
  scheduleMs: number[]
  /** Each wait is stretched or shrunk by up to this fraction at random, so retries do not march in step. */
  jitter: number
}

export interface DisablePolicy {
  /** Disabled after this many failed attempts in a row... */
  afterFailures: number
  /** ...spanning at least this long (a burst of failures within seconds is not enough)... */
  minSpanMs: number
  /** ...or after failing without a single success for this long, however few the attempts. */
  failingForMs: number
}

export interface DeliveryTimeouts {
  /** DNS, TCP connect and TLS handshake. */
  connectMs: number
  /** From the request's start to the response's status line and headers. */
  responseMs: number
  /** The whole attempt, response body included. */
  totalMs: number
}

export interface NotifierConfig {
  kafka: { brokers: string[]; clientId: string }
  databaseUrl: string
  logLevel: z.output<typeof logLevelSchema>
  topic: { name: string; partitions: number; replicationFactor: number }
  groupId: string
  fromBeginning: boolean
  sessionTimeoutMs: number
  http: { host: string; port: number }
  allowPrivate: boolean
  retry: RetryPolicy
  disable: DisablePolicy
  timeouts: DeliveryTimeouts
  maxResponseBytes: number
  concurrency: { total: number; perEndpoint: number }
  pollIntervalMs: number
}

export function loadConfig(env: Record<string, string | undefined>): NotifierConfig {
  const e = parseEnvironment(configSchema, env)
  return {
    kafka: { brokers: e.KAFKA_BROKERS, clientId: e.KAFKA_CLIENT_ID },
    databaseUrl: e.DATABASE_URL,
    logLevel: e.LOG_LEVEL,
    topic: {
      name: e.ALERTS_TOPIC,
      partitions: e.TOPIC_PARTITIONS,
      replicationFactor: e.TOPIC_REPLICATION_FACTOR,
    },
    groupId: e.NOTIFIER_GROUP_ID,
    fromBeginning: e.NOTIFIER_FROM_BEGINNING,
    sessionTimeoutMs: e.NOTIFIER_SESSION_TIMEOUT,
    http: { host: e.NOTIFIER_HOST, port: e.NOTIFIER_PORT },
    allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
    retry: { scheduleMs: e.WEBHOOK_RETRY_SCHEDULE, jitter: e.WEBHOOK_RETRY_JITTER },
    disable: {
      afterFailures: e.WEBHOOK_DISABLE_AFTER_FAILURES,
      minSpanMs: e.WEBHOOK_DISABLE_MIN_SPAN,
      failingForMs: e.WEBHOOK_DISABLE_FAILING_FOR,
    },
    timeouts: {
      connectMs: e.WEBHOOK_CONNECT_TIMEOUT,
      responseMs: e.WEBHOOK_RESPONSE_TIMEOUT,
      totalMs: e.WEBHOOK_TOTAL_TIMEOUT,
    },
    maxResponseBytes: e.WEBHOOK_MAX_RESPONSE_BYTES,
    concurrency: { total: e.WEBHOOK_CONCURRENCY, perEndpoint: e.WEBHOOK_ENDPOINT_CONCURRENCY },
    pollIntervalMs: e.WEBHOOK_POLL_INTERVAL,
  }
}
