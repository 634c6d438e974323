import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import fastifyCors from '@fastify/cors'
import fastifyFormbody from '@fastify/formbody'
import fastifyRateLimit from '@fastify/rate-limit'
import { builtinRule } from '@intellisite/alert-rules'
import { type HostResolver, systemResolver } from '@intellisite/webhooks'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Kafka } from 'kafkajs'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { AlertsFeature } from './alerts-feature.js'
import { authRoutes } from './auth/auth-routes.js'
import type { Config } from './config.js'
import { detectionsRoutes } from './detections/detections-routes.js'
import { healthRoutes } from './health/health-routes.js'
import { answerClientError } from './http/client-error.js'
import { HttpError } from './http/problem.js'
import { alertsPlugin } from './plugins/alerts.js'
import { authPlugin } from './plugins/auth.js'
import { dashboardPlugin } from './plugins/dashboard.js'
import { type AppDetectionsStore, detectionsStorePlugin } from './plugins/detections-store.js'
import { errorHandlerPlugin } from './plugins/error-handler.js'
import { kafkaPlugin } from './plugins/kafka.js'
import { metricsPlugin } from './plugins/metrics.js'
import { postgresPlugin } from './plugins/postgres.js'
import { readinessPlugin } from './plugins/readiness.js'
import { rulesPublisherPlugin } from './plugins/rules-publisher.js'
import { swaggerPlugin } from './plugins/swagger.js'
import { createRulesRepository, createRulesService, type RulesPublisher, rulesRoutes } from './rules/index.js'
import { adminBootstrapPlugin } from './users/admin-bootstrap.js'
import { createPasswordHasher } from './users/password-hasher.js'
import { createUsersRepository } from './users/users-repository.js'
import { usersRoutes } from './users/users-routes.js'
import { createWebhooksRepository } from './webhooks/webhooks-repository.js'
import { webhooksRoutes } from './webhooks/webhooks-routes.js'

/**
 * What the app is built from. Each resource given here is the caller's: opened before the app and
 * closed after it (a test, a benchmark). Each one left out the app opens itself, through the plugin
 * that owns it, and closes when the app closes (main.ts).
 */
export interface AppOptions {
  config: Config
  logger: Logger
  /** Users database, already migrated. */
  pool?: Pool
  /** Detections store (either backend). */
  store?: AppDetectionsStore
  /** The client the alerts consumer and the rules publisher are made from. */
  kafka?: Kafka
  /** Registry served at /metrics; pass one to read it beside the app. */
  metrics?: Registry
  /**
   * The live alerts stream. `false` leaves it out (`kafka` reads `disabled` in /readyz). A feature
   * given here still starts and stops with the app: its plugin's hooks do both.
   */
  alerts?: AlertsFeature | false
  /**
   * Publishes rule changes to the changelog topic. `false` leaves it out (tests of the REST side
   * alone): changes wait in the outbox for an API that has one. A given one also stops with the app.
   */
  rulesPublisher?: RulesPublisher | false
  /** Resolves webhook hosts for the registration check (DNS unless given). */
  resolveHost?: HostResolver
}

export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>

const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/

/** Honour a caller's request id (tracing through a proxy) only when it is short and harmless. */
function requestId(request: IncomingMessage): string {
  const header = request.headers['x-request-id']
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : randomUUID()
}

/** The whole HTTP application, for main.ts and tests alike. Nothing here reads the environment. */
export async function buildApp(options: AppOptions): Promise<App> {
  const { config, logger } = options

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: requestId,
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 64 * 1024,
    // A `__proto__` or `constructor.prototype` key in a JSON body is dropped when parsed (never
    // reaching an object's prototype) rather than rejecting an otherwise valid body as malformed.
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
    routerOptions: { maxParamLength: 200 },
    clientErrorHandler: answerClientError,
  }).withTypeProvider<ZodTypeProvider>()

  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  // The shutdown order is the reverse of this registration order: app.close() first ends the alert
  // streams (the alerts plugin's preClose) and stops the server accepting, then runs each plugin's
  // onClose, last registered first: the alerts consumer, the rules publisher, Kafka (nothing of its
  // own to close), the detections store, the pool. So nothing still running uses a closed resource.
  // test/shutdown-order.test.ts holds the app to it.
  await app.register(readinessPlugin)
  await app.register(postgresPlugin, { connectionString: config.DATABASE_URL, pool: options.pool })
  await app.register(detectionsStorePlugin, { config, store: options.store })
  await app.register(kafkaPlugin, { config, logger, kafka: options.kafka })

  await app.register(errorHandlerPlugin)
  await app.register(metricsPlugin, { registry: options.metrics })
  if (config.CORS_ORIGIN !== false) {
    await app.register(fastifyCors, {
      origin: config.CORS_ORIGIN,
      exposedHeaders: ['x-request-id', 'retry-after', 'www-authenticate'],
      maxAge: 600,
    })
  }
  await app.register(fastifyFormbody)
  await app.register(fastifyRateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new HttpError('RATE_LIMITED', `Too many requests: retry in ${Math.ceil(context.ttl / 1000)} s.`),
  })
  await app.register(authPlugin, { secret: config.JWT_SECRET, expiresInSeconds: config.JWT_EXPIRES_IN })
  await app.register(swaggerPlugin)

  const { pool } = app
  const { repository } = app.detectionsStore
  const users = createUsersRepository(pool)
  const hasher = await createPasswordHasher(config.BCRYPT_COST)
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW_MS }

  await app.register(healthRoutes, {})
  await app.register(usersRoutes, { users, hasher, rateLimit })
  await app.register(authRoutes, { users, hasher, rateLimit, expiresInSeconds: config.JWT_EXPIRES_IN })
  await app.register(detectionsRoutes, { repository })
  const rules = createRulesService({
    repository: createRulesRepository(pool),
    users,
    builtin: builtinRule(config.SUSPICIOUS_VEHICLE),
    // Looked up per change: the publisher is registered below, and no change comes before listen().
    onChange: options.rulesPublisher === false ? undefined : () => app.rulesPublisher.notify(),
  })
  await app.register(rulesRoutes, { rules })
  if (config.ADMIN_USERNAME !== undefined && config.ADMIN_PASSWORD !== undefined) {
    await app.register(adminBootstrapPlugin, {
      users,
      hasher,
      username: config.ADMIN_USERNAME,
      password: config.ADMIN_PASSWORD,
    })
  }
  await app.register(webhooksRoutes, {
    webhooks: createWebhooksRepository(pool),
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    resolve: options.resolveHost ?? systemResolver,
    secretOverlapMs: config.WEBHOOK_ROTATION_OVERLAP,
    maxPerUser: config.WEBHOOK_MAX_PER_USER,
  })
  await app.register(dashboardPlugin, { root: config.DASHBOARD_DIR })

  if (options.rulesPublisher !== false) {
    // Creates the changelog topic and publishes what the outbox holds when the app gets ready.
    await app.register(rulesPublisherPlugin, { config, logger, publisher: options.rulesPublisher })
  }

  if (options.alerts === false) app.readiness.checks.kafka = () => 'disabled'
  else await app.register(alertsPlugin, { config, logger, alerts: options.alerts })

  return app
}
