// Builds the real app on real databases created for the test file (unique names, dropped
// afterwards): PostgreSQL for users, and a detections store on the backend the test asks for
// (PostgreSQL unless told otherwise). Every response is validated against the app's own OpenAPI
// document.
import { randomBytes, randomUUID } from 'node:crypto'
import type { DetectionsBackend, DetectionsRepository } from '@intellisite/detections-store'
import type { HostResolver } from '@intellisite/webhooks'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { afterAll, beforeAll } from 'vitest'
import { createTestStore, type TestStore } from '../../../test/support/detections-stores.js'
import { requireEnv } from '../../../test/support/env.js'
import { dropPostgresDatabase } from '../../../test/support/postgres.js'
import type { AlertsFeature } from '../src/alerts-feature.js'
import { type App, buildApp } from '../src/app.js'
import { type Config, loadConfig } from '../src/config.js'
import { createLogger } from '../src/logger.js'
import type { RulesPublisher } from '../src/rules/index.js'
import { runMigrations } from '../src/users/migrate.js'
import { createSpecValidator, type SpecValidator } from './support/openapi-validator.js'

/** The config the API runs with, on the test services: a random JWT secret, cheap hashing, no rate limit. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(
    {
      LOG_LEVEL: 'info',
      BCRYPT_COST: '4',
      DATABASE_URL: requireEnv('DATABASE_URL'),
      KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
      AUTH_RATE_LIMIT_MAX: '10000',
      JWT_SECRET: randomBytes(32).toString('base64url'),
    },
    overrides,
  )
}

/** A PostgreSQL database of its own, through the DATABASE_URL role (which has CREATEDB). */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = requireEnv('DATABASE_URL')
  const name = `api_test_${randomUUID().replaceAll('-', '')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: () => dropPostgresDatabase(adminUrl, name),
  }
}

export interface LogCapture {
  lines: string[]
  text(): string
}

export interface TestApp {
  app: App
  config: Config
  pool: pg.Pool
  /** The detections store the app serves from; `store.drop()` is called by `close()`. */
  store: TestStore
  repository: DetectionsRepository
  logs: LogCapture
  spec: SpecValidator
  /** `app.inject` that fails the test when the response does not match the documented schema. */
  inject(options: InjectOptions): Promise<LightMyRequestResponse>
  close(): Promise<void>
}

/** What a test app is built on, for components the test builds beside it. */
export interface TestAppParts {
  pool: pg.Pool
  config: Config
  logger: Logger
  registry: Registry
}

export interface TestAppOptions {
  env?: Record<string, string>
  backend?: DetectionsBackend
  alerts?: AlertsFeature
  /** Builds the rules changelog publisher on the app's own database, logger and metrics registry. */
  rulesPublisher?: (deps: {
    pool: pg.Pool
    config: Config
    logger: Logger
    registry: Registry
  }) => RulesPublisher
  /** An existing users database (left in place on close) instead of a new one. */
  databaseUrl?: string
  /** Resolves webhook hosts at registration (DNS unless given). */
  resolveHost?: HostResolver
  /** Wraps the real detections repository before the app gets it (the test's `repository` stays unwrapped). */
  wrapRepository?: (repository: DetectionsRepository) => DetectionsRepository
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const config = testConfig(options.env)
  const database = options.databaseUrl
    ? { url: options.databaseUrl, drop: async () => {} }
    : await createPostgresDatabase()
  const pool = new pg.Pool({ connectionString: database.url, max: 5 })
  await runMigrations(pool)
  const store = await createTestStore(options.backend ?? 'postgres', 'api_test')
  const { repository } = store

  const lines: string[] = []
  const logs: LogCapture = { lines, text: () => lines.join('') }
  const logger = createLogger(config.LOG_LEVEL, { write: (line: string) => void lines.push(line) })
  const metrics = new Registry()
  const app = await buildApp({
    config,
    metrics,
    pool,
    store: { repository: options.wrapRepository?.(repository) ?? repository, backend: store.backend },
    logger,
    // The REST side alone unless the test asks for these (each needs Kafka).
    alerts: options.alerts ?? false,
    rulesPublisher: options.rulesPublisher?.({ pool, config, logger, registry: metrics }) ?? false,
    ...(options.resolveHost && { resolveHost: options.resolveHost }),
  })
  await app.ready()
  const spec = await createSpecValidator(app.swagger())

  return {
    app,
    config,
    pool,
    store,
    repository,
    logs,
    spec,
    inject: async (injectOptions) => {
      const response = await app.inject(injectOptions)
      spec.assertResponse(injectOptions.method ?? 'GET', String(injectOptions.url ?? '/'), response)
      return response
    },
    close: async () => {
      await app.close()
      await store.drop()
      await pool.end()
      await database.drop()
    },
  }
}

/** The app for a test file: built before its tests, torn down (databases dropped) after them. */
export function useTestApp(options: TestAppOptions = {}): TestApp {
  const context = {} as TestApp
  beforeAll(async () => {
    Object.assign(context, await createTestApp(options))
  })
  afterAll(async () => {
    await context.close?.()
  })
  return context
}

export async function createUserAndToken(t: TestApp, username = `user-${randomUUID().slice(0, 8)}`) {
  const password = `pw-${randomUUID()}`
  const created = await t.inject({ method: 'POST', url: '/users', payload: { username, password } })
  if (created.statusCode !== 201) throw new Error(`user creation failed: ${created.body}`)
  const login = await t.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.body}`)
  const token = login.json<{ access_token: string }>().access_token
  return {
    username,
    password,
    token,
    user: created.json<{ id: string }>(),
    headers: { authorization: `Bearer ${token}` },
  }
}
