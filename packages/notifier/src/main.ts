// Composition root: the only module that reads the environment, opens connections and listens.
import {
  checkReadiness,
  createHealthServer,
  createKafkaLogCreator,
  createServiceLogger,
  loadConfigOrExit,
  runWorker,
} from '@intellisite/common'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { loadConfig } from './config.js'
import { createNotifierMetrics } from './metrics.js'
import { createNotifier } from './notifier.js'

const config = loadConfigOrExit(() => loadConfig(process.env))
const logger = createServiceLogger({
  service: 'notifier',
  level: config.logLevel,
  redact: ['*.secret', '*.secrets', 'databaseUrl'],
})
if (config.allowPrivate) {
  logger.warn(
    'WEBHOOK_ALLOW_PRIVATE is true: webhooks may reach loopback and private addresses and use plain http (local runs only)',
  )
}

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10 })
pool.on('error', (err) => logger.warn({ err }, 'idle PostgreSQL client failed'))
const kafka = new Kafka({
  clientId: config.kafka.clientId,
  brokers: config.kafka.brokers,
  logLevel: logLevel.WARN,
  logCreator: createKafkaLogCreator(logger),
})
const registry = new Registry()
collectDefaultMetrics({ register: registry })
const metrics = createNotifierMetrics(registry)

const notifier = createNotifier({
  kafka,
  pool,
  config,
  logger,
  metrics,
  onFatalError: (err) =>
    worker.fail(err, 'alerts consumer stopped for good, exiting so the supervisor restarts us'),
})
const checks = { kafka: notifier.kafkaReady, postgres: notifier.postgresReady }

const worker = runWorker({
  name: 'notifier',
  logger,
  http: config.http,
  health: createHealthServer({
    registry,
    readiness: async () => {
      const readiness = await checkReadiness(checks)
      return { ready: readiness.status === 'ready', body: readiness }
    },
  }),
  async start() {
    await notifier.start()
    return { topic: config.topic.name, groupId: config.groupId, allowPrivate: config.allowPrivate }
  },
  async stop() {
    await notifier.stop()
    await pool.end()
  },
})
