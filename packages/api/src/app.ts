import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import fastifyCors from '@fastify/cors'
import fastifyFormbody from '@fastify/formbody'
import fastifyRateLimit from '@fastify/rate-limit'
import { builtinRule } from '@intellisite/alert-rules'
import type { DetectionsStore } from '@intellisite/detections-store'
import { type HostResolver, systemResolver } from '@intellisite/webhooks'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
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
import { authPlugin } from './plugins/auth.js'
import { dashboardPlugin } from './plugins/dashboard.js'
import { errorHandlerPlugin } from './plugins/error-handler.js'
import { metricsPlugin } from './plugins/metrics.js'
import { swaggerPlugin } from './plugins/swagger.js'
import { createRulesRepository, createRulesService, type RulesPublisher, rulesRoutes } from './rules/index.js'
import { adminBootstrapPlugin } from './users/admin-bootstrap.js'
import { createPasswordHasher } from './users/password-hasher.js'
import { createUsersRepository } from './users/users-repository.js'
import { usersRoutes } from './users/users-routes.js'
import { createWebhooksRepository } from './webhooks/webhooks-repository.js'
import { webhooksRoutes } from './webhooks/webhooks-routes.js'

export interface AppDependencies {
  config: Config
  /** Users database; owned by the caller (main.ts or the test), which closes it after the app. */
  pool: Pool
  /** Detections store (either backend); owned by the caller like `pool`. */
  store: Pick<DetectionsStore, 'repository' | 'backend'>
  logger: Logger
  alerts?: AlertsFeature
  /**
   * Publishes rule changes to the changelog topic. Without it (tests of the REST side alone) changes
   * wait in the outbox for an API that has one.
   */
  rulesPublisher?: RulesPublisher
  /** Registry served at /metrics; pass one to share it with components built outside the app (alerts). */
  metrics?: Registry
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

/** The whole HTTP application, for main.ts and tests alike. Connections come in; nothing here reads the environment. */
export async function buildApp(deps: AppDependencies): Promise<App> {
  const { config, pool, store, logger, alerts } = deps
  const { repository } = store

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

  await app.register(errorHandlerPlugin)
  await app.register(metricsPlugin, { registry: deps.metrics })
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

  const users = createUsersRepository(pool)
  const hasher = await createPasswordHasher(config.BCRYPT_COST)
  const rateLimit = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW_MS }

  await app.register(healthRoutes, {
    checks: {
      postgres: async () => {
        await pool.query('SELECT 1')
        return 'up' as const
      },
      kafka: () => (alerts === undefined ? 'disabled' : alerts.ready() ? 'up' : 'down'),
    },
    detections: {
      backend: store.backend,
      check: async () => {
        await repository.ping()
        return 'up' as const
      },
    },
  })
  await app.register(usersRoutes, { users, hasher, rateLimit })
  await app.register(authRoutes, { users, hasher, rateLimit, expiresInSeconds: config.JWT_EXPIRES_IN })
  await app.register(detectionsRoutes, { repository })
  const rules = createRulesService({
    repository: createRulesRepository(pool),
    users,
    builtin: builtinRule(config.SUSPICIOUS_VEHICLE),
    onChange: deps.rulesPublisher?.notify,
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
    resolve: deps.resolveHost ?? systemResolver,
    secretOverlapMs: config.WEBHOOK_ROTATION_OVERLAP,
    maxPerUser: config.WEBHOOK_MAX_PER_USER,
  })
  await app.register(dashboardPlugin, { root: config.DASHBOARD_DIR })

  if (deps.rulesPublisher !== undefined) {
    // Creates the changelog topic and publishes what the outbox holds when the app gets ready.
    await app.register(deps.rulesPublisher.plugin)
  }

  if (alerts !== undefined) {
    // Starts with the app and stops with it (see the plugin's hooks).
    await app.register(alerts.plugin)
  }

  return app
}
