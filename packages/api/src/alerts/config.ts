import { baseEnvSchema } from '@intellisite/common'
import { z } from 'zod'

/** Settings of GET /alerts, parsed from the environment by main.ts (merged into the API config). */
export const alertsConfigSchema = baseEnvSchema
  // TOPIC_*: used only when the API creates the alerts topic because it starts before the indexer.
  .pick({ ALERTS_TOPIC: true, TOPIC_PARTITIONS: true, TOPIC_REPLICATION_FACTOR: true })
  .extend({
    /** Prefix of this process's own consumer group (never the indexer's). */
    ALERTS_GROUP_PREFIX: z.string().min(1).default('intellisite-api-alerts'),
    SSE_HEARTBEAT_MS: z.coerce.number().int().min(50).default(15_000),
    /** `retry:` hint: how long EventSource waits before reconnecting. */
    SSE_RETRY_MS: z.coerce.number().int().min(0).default(2_000),
    /** Per-client queue bounds; a client past either is disconnected and resumes later. */
    SSE_CLIENT_QUEUE_FRAMES: z.coerce.number().int().min(1).default(1_000),
    SSE_CLIENT_QUEUE_BYTES: z.coerce.number().int().min(1_024).default(1_048_576),
    /**
     * Socket writes per second the fan-out aims to stay under (0 = sweep as soon as alerts arrive):
     * with N clients, sweeps start at least N / budget seconds apart, capped at SSE_MAX_FLUSH_DELAY_MS.
     */
    SSE_FLUSH_WRITES_PER_SECOND: z.coerce.number().int().min(0).default(100_000),
    SSE_MAX_FLUSH_DELAY_MS: z.coerce.number().int().min(0).default(50),
    SSE_MAX_CONNECTIONS_PER_USER: z.coerce.number().int().min(1).default(10),
    /** Connections are closed after this long (minus up to SSE_LIFETIME_JITTER of it) and resume. */
    SSE_MAX_LIFETIME_MS: z.coerce
      .number()
      .int()
      .min(1_000)
      .default(30 * 60_000),
    SSE_LIFETIME_JITTER: z.coerce.number().min(0).max(1).default(0.2),
    /**
     * Recent alerts kept in memory for replays and de-duplication (0 = always replay from Kafka);
     * read back from Kafka at start, so resumes after a restart are served from memory too.
     */
    SSE_REPLAY_WINDOW: z.coerce.number().int().min(0).default(10_000),
    /** Concurrent resumes served from Kafka (each runs a short-lived reader); the rest queue. */
    SSE_MAX_KAFKA_REPLAYS: z.coerce.number().int().min(1).default(8),
    SSE_REPLAY_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(60_000),
  })

export type AlertsConfig = z.infer<typeof alertsConfigSchema>
