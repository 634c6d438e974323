// Composition root: the only module that reads the environment, opens connections and listens.
import { ConfigError, createKafkaLogCreator, serializeError } from '@intellisite/common'
import closeWithGrace from 'close-with-grace'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { pino } from 'pino'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { loadConfig, type NotifierConfig } from './config.js'
import { createHealthServer } from './http-server.js'
import { createNotifierMetrics } from './metrics.js'
import { createNotifier } from './notifier.js'

let config: NotifierConfig
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(1)
}

const logger = pino({
  level: config.logLevel,
  base: { service: 'notifier' },
  redact: ['*.password', '*.authorization', '*.secret', '*.secrets', 'databaseUrl'],
  serializers: { err: serializeError },
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

let fatal = false
const notifier = createNotifier({
  kafka,
  pool,
  config,
  logger,
  metrics,
  onFatalError: (err) => {
    fatal = true
    logger.fatal({ err }, 'alerts consumer stopped for good, exiting so the supervisor restarts us')
    process.kill(process.pid, 'SIGTERM')
  },
})
const server = createHealthServer({
  registry,
  checks: { kafka: notifier.kafkaReady, postgres: notifier.postgresReady },
})

closeWithGrace({ delay: 30_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down')
  server.close()
  await notifier.stop()
  await pool.end()
  logger.info('notifier stopped')
  // close-with-grace exits 1 when the handler throws: a supervisor must see the failure.
  if (fatal) throw new Error('the notifier stopped for good')
})

server.listen(config.http.port, config.http.host, () => {
  logger.info({ port: config.http.port }, 'health server listening')
})
try {
  await notifier.start()
  logger.info(
    { topic: config.topic.name, groupId: config.groupId, allowPrivate: config.allowPrivate },
    'notifier started',
  )
} catch (err) {
  logger.fatal({ err }, 'notifier failed to start')
  fatal = true
  process.kill(process.pid, 'SIGTERM')
}
