// A minimal Fastify app (zod type provider, @fastify/jwt with a test secret, a tiny problem+json
// handler) with the alerts feature on a unique topic, listening on a real port; plus a
// transactional producer like the indexer's. Everything registers its own cleanup.
import { randomUUID } from 'node:crypto'
import { BUILTIN_RULE_ID, BUILTIN_RULE_NAME } from '@intellisite/alert-rules'
import type { Alert, AlertRule } from '@intellisite/detections-store'
import { EventSource } from 'eventsource'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import type { Producer } from 'kafkajs'
import pino from 'pino'
import { Registry } from 'prom-client'
import { onTestFinished } from 'vitest'
import { testKafka } from '../../../../test/support/kafka.js'
import {
  type AlertsConfig,
  type AlertsFeature,
  alertsConfigSchema,
  createAlertsFeature,
} from '../../src/alerts/index.js'
import { authPlugin } from '../../src/plugins/auth.js'
import { errorHandlerPlugin } from '../../src/plugins/error-handler.js'

export { testKafka } from '../../../../test/support/kafka.js'
export { waitFor } from '../../../../test/support/wait.js'

export const SECRET = 'test-secret-test-secret-test-secret-0123'
export const PARTITIONS = 3

export function alertsConfig(topic: string, overrides: Record<string, string> = {}): AlertsConfig {
  return alertsConfigSchema.parse({
    ALERTS_TOPIC: topic,
    ALERTS_GROUP_PREFIX: `alerts-test-${randomUUID()}`,
    TOPIC_PARTITIONS: String(PARTITIONS),
    ...overrides,
  })
}

export interface TestServer {
  url: string
  config: AlertsConfig
  app: FastifyInstance
  feature: AlertsFeature
  registry: Registry
  token(claims?: { sub?: string; username?: string }, expiresIn?: number): string
  close(): Promise<void>
}

export async function startServer(
  config: AlertsConfig,
  { brokers }: { brokers?: string } = {},
): Promise<TestServer> {
  const registry = new Registry()
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const feature = createAlertsFeature({
    kafka: testKafka(`alerts-test-${randomUUID()}`, brokers),
    config,
    logger,
    registry,
  })
  await feature.start()
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger })
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  // The app's own error handler and auth plugin: the stream authenticates and fails as the app does.
  await app.register(errorHandlerPlugin)
  await app.register(authPlugin, { secret: SECRET, expiresInSeconds: 3600 })
  await app.register(feature.plugin)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  let closed = false
  const server: TestServer = {
    url: `http://127.0.0.1:${address.port}`,
    config,
    app,
    feature,
    registry,
    token: (claims = {}, expiresIn = 3600) =>
      app.jwt.sign({ sub: claims.sub ?? 'user-1', username: claims.username ?? 'alice' }, { expiresIn }),
    async close() {
      if (closed) return
      closed = true
      await app.close()
    },
  }
  onTestFinished(() => server.close())
  return server
}

export async function deleteTopicLater(topic: string, brokers?: string): Promise<void> {
  onTestFinished(async () => {
    const admin = testKafka(`alerts-test-${randomUUID()}`, brokers).admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
    await admin.disconnect()
  })
}

/** The built-in rule as alerts name it: with no other rule, every alert carries it alone. */
export const BUILTIN: AlertRule = {
  id: BUILTIN_RULE_ID,
  version: 1,
  name: BUILTIN_RULE_NAME,
  scope: 'shared',
}

/** A private rule of `owner`, as the indexer names it on an alert (owner included). */
export function privateRule(owner: string, name = `${owner}'s rule`): AlertRule {
  return { id: randomUUID(), version: 1, name, scope: 'private', owner }
}

export function makeAlert(seq: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id: `alert-${seq}-${randomUUID()}`,
    detectedAt: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
    year: 2000 + (seq % 20),
    make: seq % 2 === 0 ? 'Toyota' : 'MAZDA',
    model: `model-${seq}`,
    category: seq % 3 === 0 ? 'SUV, Pickup' : 'SUV',
    reason: 'category matches SUV',
    rules: [BUILTIN],
    ...overrides,
  }
}

/** Like the indexer: alerts go out inside a Kafka transaction, spread over the partitions. */
export async function createAlertsProducer(
  topic: string,
  { brokers }: { brokers?: string } = {},
): Promise<{ send(alerts: Alert[]): Promise<void> }> {
  const producer: Producer = testKafka(`alerts-test-${randomUUID()}`, brokers).producer({
    transactionalId: `alerts-test-${randomUUID()}`,
    idempotent: true,
    maxInFlightRequests: 1,
  })
  await producer.connect()
  onTestFinished(() => producer.disconnect())
  let next = 0
  return {
    async send(alerts) {
      const transaction = await producer.transaction()
      try {
        await transaction.send({
          topic,
          messages: alerts.map((alert) => ({
            key: alert.id,
            value: JSON.stringify(alert),
            partition: next++ % PARTITIONS,
          })),
        })
        await transaction.commit()
      } catch (err) {
        await transaction.abort()
        throw err
      }
    },
  }
}

export interface Received {
  alerts: Alert[]
  ids: string[]
  events: { type: string; data: string; id: string }[]
  source: EventSource
  /** Resolves when `count` alerts arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<Alert[]>
  close(): void
}

/** A real SSE client (the `eventsource` package), authenticated with a header. */
export function subscribe(url: string, token: string, headers: Record<string, string> = {}): Received {
  const source = new EventSource(url, {
    fetch: (input, init) =>
      // EventSource's own headers last: on reconnect its Last-Event-ID must win over ours.
      fetch(input, { ...init, headers: { authorization: `Bearer ${token}`, ...headers, ...init?.headers } }),
  })
  const received: Received = {
    alerts: [],
    ids: [],
    events: [],
    source,
    waitFor(count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now()
        const check = () => {
          if (received.alerts.length >= count) return resolve(received.alerts.slice(0, count))
          if (Date.now() - started > timeoutMs) {
            return reject(new Error(`timed out with ${received.alerts.length}/${count} alerts`))
          }
          setTimeout(check, 10)
        }
        check()
      })
    },
    close: () => source.close(),
  }
  for (const type of ['alert', 'reset', 'token-expired']) {
    source.addEventListener(type, (event) => {
      received.events.push({ type, data: event.data, id: event.lastEventId })
      if (type === 'alert') {
        received.alerts.push(JSON.parse(event.data) as Alert)
        received.ids.push(event.lastEventId)
      }
    })
  }
  onTestFinished(() => source.close())
  return received
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)
  const value = metric?.values.find((v) =>
    Object.entries(labels).every(([key, expected]) => String(v.labels[key]) === expected),
  )
  return value?.value ?? 0
}
