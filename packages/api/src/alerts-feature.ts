import type { FastifyPluginAsync } from 'fastify'

/**
 * The seam between the REST app and the live alerts stream (`src/alerts/`). `buildApp` works
 * without it; when given, the plugin is registered after JWT, the error handler and Swagger, so it
 * can use `app.authenticate` / `app.jwt.verify`, throw errors that become problem+json, and have
 * its routes documented. The plugin starts the consumer when the app gets ready and stops it when
 * the app closes: closing the app is the one way to stop it.
 */
export interface AlertsFeature {
  plugin: FastifyPluginAsync
  /** Whether the Kafka consumer behind the stream is connected; reported as `kafka` by /readyz. */
  ready(): boolean
}
