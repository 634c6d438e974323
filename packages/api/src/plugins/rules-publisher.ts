import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { createRulesPublisher, type RulesPublisher } from '../rules/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Publishes committed rule changes from the outbox to the changelog topic. */
    rulesPublisher: RulesPublisher
  }
}

export interface RulesPublisherPluginOptions {
  config: Config
  logger: Logger
  /** A publisher built elsewhere; without one the plugin builds it on the app's Kafka client and pool. */
  publisher?: RulesPublisher
}

/** Either way the publisher's own plugin creates the changelog topic when the app gets ready and stops it on close. */
export const rulesPublisherPlugin = fp<RulesPublisherPluginOptions>(
  async (app, { config, logger, publisher: given }) => {
    const publisher =
      given ??
      createRulesPublisher({ kafka: app.kafka, pool: app.pool, config, logger, registry: app.metrics })
    app.decorate('rulesPublisher', publisher)
    await app.register(publisher.plugin)
  },
  { name: 'rules-publisher', dependencies: ['kafka', 'postgres', 'metrics'] },
)
