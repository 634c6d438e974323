import { RULES_TOPIC_CONFIG, type RuleRecordMessage } from '@intellisite/alert-rules'
import { ensureTopics } from '@intellisite/common'
import type { FastifyPluginAsync } from 'fastify'
import { CompressionTypes, type Kafka, Partitioners } from 'kafkajs'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import { Counter, Gauge, Registry } from 'prom-client'
import type { RulesConfig } from './config.js'
import { createRulesRelay } from './rules-relay.js'

export { type RulesConfig, rulesConfigSchema } from './config.js'
export { createRulesRepository, type RulesRepository } from './rules-repository.js'
export { rulesRoutes } from './rules-routes.js'
export { createRulesService, type RulesService } from './rules-service.js'

export interface RulesPublisher {
  /** Creates the changelog topic (compacted) if missing and publishes what the outbox holds; owns its lifetime. */
  plugin: FastifyPluginAsync
  /** A rule change has just committed: publish it now. */
  notify(): void
  start(): Promise<void>
  close(): Promise<void>
}

export interface RulesPublisherOptions {
  kafka: Kafka
  pool: Pool
  config: Pick<RulesConfig, 'ALERT_RULES_TOPIC' | 'RULES_RELAY_INTERVAL_MS' | 'RULES_RELAY_RETRY_MAX_MS'> & {
    TOPIC_REPLICATION_FACTOR: number
  }
  logger: Logger
  registry?: Registry
}

/**
 * The API's side of the rules changelog: an idempotent producer (acks from every in-sync replica,
 * gzip: a watch list of 100,000 entries is a few MB of JSON) fed by the outbox relay.
 */
export function createRulesPublisher(options: RulesPublisherOptions): RulesPublisher {
  const { kafka, pool, config } = options
  const topic = config.ALERT_RULES_TOPIC
  const logger = options.logger.child({ component: 'rules-publisher' })
  const registers = [options.registry ?? new Registry()]
  const published = new Counter({
    name: 'rules_changelog_records_published_total',
    help: 'Records published to the rules changelog topic, by kind (rule, tombstone)',
    labelNames: ['kind'] as const,
    registers,
  })
  new Gauge({
    name: 'rules_outbox_pending',
    help: 'Rule changes committed and not yet published to the changelog topic (every replica’s)',
    registers,
    async collect() {
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM rules_outbox')
      this.set(rows[0]?.n ?? 0)
    },
  })

  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Keys decide partitions (one rule, one partition); naming it also silences kafkajs's notice.
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  const relay = createRulesRelay({
    pool,
    logger,
    intervalMs: config.RULES_RELAY_INTERVAL_MS,
    retryMaxMs: config.RULES_RELAY_RETRY_MAX_MS,
    send: async (record: RuleRecordMessage) => {
      await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: [record] })
    },
    onPublished: (record) => published.inc({ kind: record.value === null ? 'tombstone' : 'rule' }),
  })

  let started: Promise<void> | undefined
  let closed: Promise<void> | undefined

  async function start(): Promise<void> {
    const admin = kafka.admin()
    await admin.connect()
    try {
      // Indexers may create it too; whoever is first, it is compacted.
      await ensureTopics(
        admin,
        [
          {
            topic,
            numPartitions: 1,
            replicationFactor: config.TOPIC_REPLICATION_FACTOR,
            configEntries: [...RULES_TOPIC_CONFIG],
          },
        ],
        logger,
      )
    } finally {
      await admin.disconnect()
    }
    await producer.connect()
    await relay.start()
    logger.info({ topic }, 'rules changelog publisher started')
  }

  function close(): Promise<void> {
    closed ??= (async () => {
      await relay.close()
      await producer.disconnect()
    })()
    return closed
  }

  return {
    plugin: async (app) => {
      app.addHook('onReady', async () => {
        started ??= start()
        await started
      })
      app.addHook('onClose', close)
    },
    notify: relay.notify,
    start: () => {
      started ??= start()
      return started
    },
    close,
  }
}
