// Composition root: the only module that reads the environment, listens, and handles signals.

import { ConfigError, createKafkaLogCreator } from '@intellisite/common'
import { openDetectionsStore } from '@intellisite/detections-store'
import closeWithGrace from 'close-with-grace'
import { Kafka, logLevel } from 'kafkajs'
import { pino } from 'pino'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { loadConfig } from './config.js'
import { createHealthServer } from './http-server.js'
import { createIndexer } from './indexer.js'
import { createIndexerMetrics } from './metrics.js'

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(1)
}

const logger = pino({
  level: config.logLevel,
  base: { service: 'indexer' },
  redact: ['*.password', '*.authorization', 'storeUrl'],
})

const store = openDetectionsStore(config.storeUrl, {
  logger: logger.child({ component: 'detections-store' }),
  appName: config.kafka.clientId,
  connectTimeoutMs: config.storeConnectTimeoutMs,
})
const { repository } = store
const kafka = new Kafka({
  clientId: config.kafka.clientId,
  brokers: config.kafka.brokers,
  logLevel: logLevel.WARN,
  logCreator: createKafkaLogCreator(logger),
  retry: { initialRetryTime: config.kafka.retryInitialMs, retries: config.kafka.retries },
})
const registry = new Registry()
collectDefaultMetrics({ register: registry })
const metrics = createIndexerMetrics(registry)

let fatal = false
let failpointHits = 0
const failpoint = config.failpoint
const hit = (point: 'after-store' | 'after-commit') => () => {
  if (failpoint?.point !== point || ++failpointHits !== failpoint.count) return
  logger.warn({ failpoint: point, count: failpointHits }, 'failpoint reached: SIGKILL')
  process.kill(process.pid, 'SIGKILL')
}
const indexer = createIndexer({
  kafka,
  repository,
  config,
  logger,
  metrics,
  ...(failpoint && { faults: { afterStore: hit('after-store'), afterCommit: hit('after-commit') } }),
  onFatalError: (err) => {
    fatal = true
    logger.fatal({ err }, 'consumer stopped for good, exiting so the supervisor restarts us')
    process.kill(process.pid, 'SIGTERM')
  },
})
const server = createHealthServer({
  registry,
  // The check keeps its historical name `mongo`; it pings whichever detections backend is configured.
  checks: { kafka: indexer.ready, mongo: () => repository.ping(), stalled: indexer.stalled },
})

closeWithGrace({ delay: 30_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down')
  server.close()
  await indexer.stop()
  await store.close()
  logger.info('indexer stopped')
  // close-with-grace exits 1 when the handler throws: a supervisor must see the failure.
  if (fatal) throw new Error('the Kafka consumer stopped for good')
})

server.listen(config.http.port, config.http.host, () => {
  logger.info({ port: config.http.port }, 'health server listening')
})
try {
  await indexer.start()
  logger.info(
    {
      topic: config.topics.detections,
      groupId: config.groupId,
      suspicious: config.suspiciousVehicle,
      store: store.backend,
    },
    'indexer started',
  )
} catch (err) {
  logger.fatal({ err }, 'indexer failed to start')
  fatal = true
  process.kill(process.pid, 'SIGTERM')
}
