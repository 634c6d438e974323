import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyPluginAsync } from 'fastify'
import type { Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { detachFromHttpServer } from '../http/detach-socket.js'
import type { AlertEntry } from './alert-entry.js'
import { type AlertsConsumer, createAlertsConsumer } from './alerts-consumer.js'
import { type AlertsMetrics, createAlertsMetrics } from './alerts-metrics.js'
import { type AlertsRouteDeps, createAlertsRoute } from './alerts-route.js'
import { createStreamOpener } from './alerts-stream.js'
import { type AlertsWindow, createAlertsWindow } from './alerts-window.js'
import { createCatchUp } from './catch-up.js'
import type { AlertsConfig } from './config.js'
import { type BroadcasterOptions, createSseBroadcaster, type SseBroadcaster } from './sse-broadcaster.js'

export { type AlertsConfig, alertsConfigSchema } from './config.js'
export { decodeResumeToken, encodeResumeToken, type Position } from './resume-token.js'
export type { BroadcasterOptions, SseBroadcaster } from './sse-broadcaster.js'

export interface AlertsFeature {
  /**
   * Declares GET /alerts; register it after @fastify/jwt and the error handler. The feature's
   * whole life is the app's: the consumer starts when the app gets ready, streams end and the
   * consumer stops when it closes.
   */
  plugin: FastifyPluginAsync
  /**
   * Creates the alerts topic if missing and starts the process's single consumer. The plugin does
   * it when the app gets ready; calling it earlier (a test without an app) is the same start.
   */
  start(): Promise<void>
  /** The consumer is running and joined (for /readyz). */
  ready(): boolean
}

export interface AlertsFeatureOptions {
  kafka: Kafka
  config: AlertsConfig
  logger: Logger
  registry?: Registry
}

export function createAlertsFeature(options: AlertsFeatureOptions): AlertsFeature {
  const { kafka, config } = options
  const logger = options.logger.child({ component: 'alerts' })
  const window = createAlertsWindow(config.SSE_REPLAY_WINDOW)
  // Read when scraped, by then every part is built.
  const metrics = createAlertsMetrics(
    options.registry ?? new Registry(),
    () => consumer.lag(),
    () => broadcaster.clientCount,
    () => window.size,
  )
  const broadcaster = createSseBroadcaster(broadcasterOptions(config, metrics, logger))
  const consumer = alertsConsumer({
    kafka,
    config,
    window,
    logger,
    onEntries: (entries) => broadcaster.publish(entries),
  })
  const catchUp = createCatchUp({ kafka, config, consumer, window, broadcaster, metrics, logger })
  const openStream = createStreamOpener({ config, consumer, broadcaster, catchUp, logger })
  return serveAlerts({
    consumer,
    broadcaster,
    logger,
    open(request, response, stream) {
      // As Node's server does for an Upgrade: a long-lived stream then holds its socket and little
      // more, not the request, the response and the framework's objects around them.
      detachFromHttpServer(request, response)
      openStream(request.socket, stream)
    },
  })
}

export function broadcasterOptions(
  config: AlertsConfig,
  metrics: AlertsMetrics,
  logger: Logger,
): BroadcasterOptions {
  return {
    heartbeatMs: config.SSE_HEARTBEAT_MS,
    maxQueueFrames: config.SSE_CLIENT_QUEUE_FRAMES,
    maxQueueBytes: config.SSE_CLIENT_QUEUE_BYTES,
    maxConnectionsPerUser: config.SSE_MAX_CONNECTIONS_PER_USER,
    writesPerSecond: config.SSE_FLUSH_WRITES_PER_SECOND,
    maxFlushDelayMs: config.SSE_MAX_FLUSH_DELAY_MS,
    metrics,
    logger,
  }
}

/** The process's one consumer of the alerts topic, in a group of its own (see `createAlertsConsumer`). */
export function alertsConsumer(deps: {
  kafka: Kafka
  config: AlertsConfig
  window: AlertsWindow
  logger: Logger
  onEntries(entries: readonly AlertEntry[]): void
}): AlertsConsumer {
  const { config } = deps
  return createAlertsConsumer({
    ...deps,
    topic: config.ALERTS_TOPIC,
    groupId: `${config.ALERTS_GROUP_PREFIX}-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    partitions: config.TOPIC_PARTITIONS,
    replicationFactor: config.TOPIC_REPLICATION_FACTOR,
    backfill: config.SSE_REPLAY_WINDOW,
    backfillTimeoutMs: Math.min(config.SSE_REPLAY_TIMEOUT_MS, 15_000),
  })
}

/**
 * GET /alerts over a consumer and the streams fed from it, for the life of the app: the consumer
 * starts (and reads back its replay window) when the app gets ready, before it listens; streams
 * end before the server closes (open streams would keep server.close() waiting for ever); the
 * consumer stops once the app has closed.
 */
export function serveAlerts(parts: {
  consumer: Pick<AlertsConsumer, 'start' | 'started' | 'ready' | 'close'>
  broadcaster: Pick<SseBroadcaster, 'acquire' | 'close'>
  open: AlertsRouteDeps['open']
  logger: Logger
}): AlertsFeature {
  const { consumer, broadcaster, logger } = parts
  let closing = false
  let started: Promise<void> | undefined
  const start = () => {
    started ??= consumer.start()
    return started
  }
  const route = createAlertsRoute({
    broadcaster,
    accepting: () => !closing && consumer.started(),
    open: parts.open,
  })
  const plugin: FastifyPluginAsync = async (app) => {
    app.addHook('onReady', start)
    app.addHook('preClose', async () => {
      closing = true
      const began = Date.now()
      await broadcaster.close()
      logger.debug({ ms: Date.now() - began }, 'alerts streams ended before server close')
    })
    app.addHook('onClose', async () => {
      const began = Date.now()
      await consumer.close()
      logger.info({ ms: Date.now() - began }, 'alerts consumer stopped')
    })
    await app.register(route)
  }
  return { plugin, start, ready: () => !closing && consumer.ready() }
}
