import {
  createKafkaLogCreator,
  createServiceLogger,
  describeDetectionsStore,
  loadConfigOrExit,
  runWorker,
  warnWhenMongoUrlChoseStore,
} from '@intellisite/common'
import { type DetectionsStore, openDetectionsStore } from '@intellisite/detections-store'
import { Kafka, logLevel } from 'kafkajs'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { type IndexerConfig, loadConfig } from './config.js'
import { createIndexerHealthServer } from './health.js'
import { createIndexer } from './indexer.js'
import { createIndexerMetrics } from './metrics.js'
import { createStoreMaintenance } from './store-maintenance.js'

/** The store and the Kafka clients the indexer process runs on. */
export interface IndexerConnections {
  store: DetectionsStore
  kafka: Kafka
  /** The client of the transactional producers (see `IndexerDeps.producerKafka`). */
  producerKafka: Kafka
}

/** Opens the detections store and builds the Kafka clients, as the configuration says. */
export function openIndexerConnections(config: IndexerConfig, logger: Logger): IndexerConnections {
  const storeChoice = { url: config.storeUrl, source: config.storeSource }
  warnWhenMongoUrlChoseStore(logger, storeChoice)
  const store = openDetectionsStore(config.storeUrl, {
    logger: logger.child({ component: 'detections-store' }),
    appName: config.kafka.clientId,
    connectTimeoutMs: config.storeConnectTimeoutMs,
  })
  const client = {
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    logLevel: logLevel.WARN,
    logCreator: createKafkaLogCreator(logger),
  }
  const kafka = new Kafka({
    ...client,
    retry: { initialRetryTime: config.kafka.retryInitialMs, retries: config.kafka.retries },
  })
  // The transactional producers wait at most KAFKA_RETRY_MAX_MS between retries, so a batch
  // follows a moved leader within that long of the move (kafkajs's own backoff reaches 30 s). The
  // consumer and the admin keep kafkajs's backoff: capping them too gave no shorter pause in the
  // cluster test, and each of their retries while a broker is down may hit kafkajs's
  // non-retriable group coordinator lookup.
  const producerKafka = new Kafka({
    ...client,
    retry: {
      initialRetryTime: config.kafka.retryInitialMs,
      maxRetryTime: config.kafka.retryMaxMs,
      retries: config.kafka.retries,
    },
  })
  return { store, kafka, producerKafka }
}

/**
 * The indexer as a process: opens the store and Kafka, serves /healthz /readyz /metrics, stops
 * gracefully on SIGTERM/SIGINT. `connect` opens what it runs on (by default from the
 * configuration); a caller may decorate what it returns, and the process closes the store it got.
 */
export async function runIndexer({
  env,
  connect = openIndexerConnections,
}: {
  env: Record<string, string | undefined>
  connect?: (config: IndexerConfig, logger: Logger) => IndexerConnections
}): Promise<void> {
  const config = loadConfigOrExit(() => loadConfig(env))
  const logger = createServiceLogger({ service: 'indexer', level: config.logLevel, redact: ['storeUrl'] })
  const { store, kafka, producerKafka } = connect(config, logger)
  const { repository } = store
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const metrics = createIndexerMetrics(registry)

  const indexer = createIndexer({
    kafka,
    producerKafka,
    repository,
    config,
    logger,
    metrics,
    onFatalError: (err) =>
      worker.fail(err, 'consumer stopped for good, exiting so the supervisor restarts us'),
  })
  const maintenance = createStoreMaintenance({
    repository,
    policy: config.retention,
    intervalMs: config.maintenanceIntervalMs,
    logger: logger.child({ component: 'store-maintenance' }),
  })

  const worker = runWorker({
    name: 'indexer',
    logger,
    http: config.http,
    health: createIndexerHealthServer({
      registry,
      checks: {
        kafka: indexer.ready,
        detections: { backend: store.backend, ping: () => repository.ping() },
        stalled: indexer.stalled,
        rules: indexer.rulesLoaded,
      },
    }),
    async start() {
      await indexer.start()
      // After start: the schema the maintenance works on exists by then.
      maintenance.start()
      return {
        topic: config.topics.detections,
        rulesTopic: config.topics.rules,
        groupId: config.groupId,
        suspicious: config.suspiciousVehicle,
        store: {
          backend: store.backend,
          ...describeDetectionsStore({ url: config.storeUrl, source: config.storeSource }),
        },
        retention: config.retention,
      }
    },
    async stop() {
      await indexer.stop()
      await maintenance.stop()
      await store.close()
    },
  })
}
