import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyPluginAsync } from 'fastify'
import type { Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { createAlertsConsumer } from './alerts-consumer.js'
import { createAlertsMetrics } from './alerts-metrics.js'
import { createAlertsRoute } from './alerts-route.js'
import { createStreamOpener } from './alerts-stream.js'
import { createAlertsWindow } from './alerts-window.js'
import type { AlertsConfig } from './config.js'
import { type BroadcasterOptions, createSseBroadcaster, type SseBroadcaster } from './sse-broadcaster.js'

export { type AlertsConfig, alertsConfigSchema } from './config.js'
export { decodeResumeToken, encodeResumeToken, type Position } from './resume-token.js'
export type { BroadcasterOptions, SseBroadcaster } from './sse-broadcaster.js'

export interface AlertsFeature {
  /** Declares GET /alerts; register it after @fastify/jwt and the error handler. */
  plugin: FastifyPluginAsync
  /**
   * Creates the alerts topic if missing and starts the process's single consumer. The plugin does
   * it when the app gets ready; calling it earlier (a test without an app) is the same start.
   */
  start(): Promise<void>
  /** The consumer is running and joined (for /readyz). */
  ready(): boolean
  /** Ends every stream (clients resume elsewhere with Last-Event-ID), then stops the consumer. */
  close(): Promise<void>
}

export interface AlertsFeatureOptions {
  kafka: Kafka
  config: AlertsConfig
  logger: Logger
  registry?: Registry
  /** The fan-out strategy; the benchmark swaps in a reference one to compare against. */
  createBroadcaster?: (options: BroadcasterOptions) => SseBroadcaster
  /**
   * Whether a stream's socket is taken away from Node's HTTP server once it is hijacked (default),
   * releasing the request and response; the benchmark turns it off to measure what that saves.
   */
  detachSockets?: boolean
}

export function createAlertsFeature(options: AlertsFeatureOptions): AlertsFeature {
  const { kafka, config } = options
  const logger = options.logger.child({ component: 'alerts' })
  const window = createAlertsWindow(config.SSE_REPLAY_WINDOW)
  let broadcaster: SseBroadcaster | undefined
  const consumer = createAlertsConsumer({
    kafka,
    topic: config.ALERTS_TOPIC,
    groupId: `${config.ALERTS_GROUP_PREFIX}-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    partitions: config.TOPIC_PARTITIONS,
    replicationFactor: config.TOPIC_REPLICATION_FACTOR,
    backfill: config.SSE_REPLAY_WINDOW,
    backfillTimeoutMs: Math.min(config.SSE_REPLAY_TIMEOUT_MS, 15_000),
    window,
    onEntries: (entries) => broadcaster?.publish(entries),
    logger,
  })
  const metrics = createAlertsMetrics(
    options.registry ?? new Registry(),
    () => consumer.lag(),
    () => broadcaster?.clientCount ?? 0,
    () => window.size,
  )
  broadcaster = (options.createBroadcaster ?? createSseBroadcaster)({
    heartbeatMs: config.SSE_HEARTBEAT_MS,
    maxQueueFrames: config.SSE_CLIENT_QUEUE_FRAMES,
    maxQueueBytes: config.SSE_CLIENT_QUEUE_BYTES,
    maxConnectionsPerUser: config.SSE_MAX_CONNECTIONS_PER_USER,
    writesPerSecond: config.SSE_FLUSH_WRITES_PER_SECOND,
    maxFlushDelayMs: config.SSE_MAX_FLUSH_DELAY_MS,
    metrics,
    logger,
  })
  const open = createStreamOpener({ kafka, config, consumer, window, broadcaster, metrics, logger })
  let closing = false
  let closed: Promise<void> | undefined
  const streams = broadcaster

  const route = createAlertsRoute({
    broadcaster: streams,
    accepting: () => !closing && consumer.started(),
    open,
    detachSockets: options.detachSockets ?? true,
  })
  let started: Promise<void> | undefined
  const start = () => {
    started ??= consumer.start()
    return started
  }
  /**
   * The feature's whole life in the app's: the consumer starts (and reads back its replay window)
   * when the app gets ready, before it listens; streams end before the server closes (open streams
   * would keep server.close() waiting for ever); the consumer stops when the app has closed.
   */
  const plugin: FastifyPluginAsync = async (app) => {
    app.addHook('onReady', start)
    app.addHook('preClose', async () => {
      closing = true
      const ended = Date.now()
      await streams.close()
      logger.debug({ ms: Date.now() - ended }, 'alerts streams ended before server close')
    })
    app.addHook('onClose', async () => {
      await close()
    })
    await app.register(route)
  }

  function close(): Promise<void> {
    closing = true
    closed ??= (async () => {
      const began = Date.now()
      await streams.close()
      const streamsMs = Date.now() - began
      await consumer.close()
      logger.info({ streamsMs, totalMs: Date.now() - began }, 'alerts stream closed')
    })()
    return closed
  }

  return {
    plugin,
    start,
    ready: () => !closing && consumer.ready(),
    close,
  }
}
