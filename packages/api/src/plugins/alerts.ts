import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { createAlertsFeature } from '../alerts/index.js'
import type { AlertsFeature } from '../alerts-feature.js'
import type { Config } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The live alerts stream (GET /alerts) and this process's one alerts consumer behind it. */
    alerts: AlertsFeature
  }
}

export interface AlertsPluginOptions {
  config: Config
  logger: Logger
  /** A feature built elsewhere; without one the plugin builds it on the app's Kafka client and registry. */
  alerts?: AlertsFeature
}

/**
 * Either way the feature's own plugin owns its life: the consumer starts when the app gets ready
 * (before it listens), streams end before the server closes, and the consumer stops when the app
 * closes. Register this after JWT, the error handler and Swagger (see AlertsFeature).
 */
export const alertsPlugin = fp<AlertsPluginOptions>(
  async (app, { config, logger, alerts: given }) => {
    const alerts = given ?? createAlertsFeature({ kafka: app.kafka, config, logger, registry: app.metrics })
    app.decorate('alerts', alerts)
    app.readiness.checks.kafka = () => (alerts.ready() ? 'up' : 'down')
    await app.register(alerts.plugin)
  },
  { name: 'alerts', dependencies: ['readiness', 'kafka', 'metrics'] },
)
