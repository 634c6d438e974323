import { createKafkaLogCreator } from '@intellisite/common'
import fp from 'fastify-plugin'
import { Kafka, logLevel } from 'kafkajs'
import type { Logger } from 'pino'
import type { Config } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The Kafka client the alerts consumer and the rules publisher are made from. */
    kafka: Kafka
  }
}

export interface KafkaPluginOptions {
  config: Pick<Config, 'KAFKA_BROKERS' | 'KAFKA_CLIENT_ID'>
  logger: Logger
  /** A client the caller made; without one the plugin makes its own. */
  kafka?: Kafka
}

/**
 * The client holds no connection of its own: each consumer, producer and admin made from it is
 * disconnected by whoever made it, so there is nothing to close here. Registering it before the
 * plugins that use it still places it in the shutdown order (see app.ts).
 */
export const kafkaPlugin = fp<KafkaPluginOptions>(
  async (app, { config, logger, kafka }) => {
    app.decorate(
      'kafka',
      kafka ??
        new Kafka({
          clientId: config.KAFKA_CLIENT_ID,
          brokers: config.KAFKA_BROKERS,
          logLevel: logLevel.WARN,
          logCreator: createKafkaLogCreator(logger),
        }),
    )
  },
  { name: 'kafka' },
)
