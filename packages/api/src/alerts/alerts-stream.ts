import type { Socket } from 'node:net'
import type { Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { alertFrame, filterKeys } from './alert-entry.js'
import type { StreamReader } from './alert-reader.js'
import type { AlertsConsumer } from './alerts-consumer.js'
import type { AlertsMetrics } from './alerts-metrics.js'
import { replayFromKafka } from './alerts-replay.js'
import type { AlertsWindow } from './alerts-window.js'
import type { AlertsConfig } from './config.js'
import { encodeResumeToken, type Position } from './resume-token.js'
import { createSemaphore } from './semaphore.js'
import type { SseBroadcaster } from './sse-broadcaster.js'
import type { SseClient } from './sse-client.js'
import { httpChunk, sseEvent, sseRetry, TOKEN_EXPIRED_CHUNK } from './sse-frames.js'

export interface StreamRequest {
  /** Who reads (the token's subject) and what they selected. */
  reader: StreamReader
  /** Token expiry, epoch seconds. */
  exp: number | undefined
  /** Resume position (Last-Event-ID), or a time to start from, or neither (live only). */
  resume?: Position
  since?: number
  /** Extra response headers set by earlier hooks (CORS, request id). */
  headers: Record<string, string>
}

export interface StreamDeps {
  kafka: Kafka
  config: AlertsConfig
  consumer: AlertsConsumer
  window: AlertsWindow
  broadcaster: SseBroadcaster
  metrics: AlertsMetrics
  logger: Logger
}

/**
 * Opens one SSE stream on a hijacked socket (the caller already authenticated the request and
 * reserved a connection slot). The client is registered for live alerts first and only then
 * catches up, from the in-memory window or from Kafka, so nothing falls between replay and live;
 * at the seam duplicates are dropped by Kafka position.
 *
 * An alert the reader does not get (filtered out, or not theirs to see) still moves their
 * position: ids sent after it are past it, so a resume never reads it again, and one sent before
 * it resumes where it is examined (and skipped) again. No gap, no duplicate, whatever the filter.
 */
export function createStreamOpener(deps: StreamDeps) {
  const { config, consumer, window, broadcaster, metrics, logger } = deps
  const kafkaReplays = createSemaphore(config.SSE_MAX_KAFKA_REPLAYS)
  const retryChunk = httpChunk(sseRetry(config.SSE_RETRY_MS))

  function writeHead(socket: Socket, headers: Record<string, string>): void {
    const lines = [
      'HTTP/1.1 200 OK',
      'Content-Type: text/event-stream; charset=utf-8',
      'Cache-Control: no-cache, no-transform',
      'Connection: keep-alive',
      'X-Accel-Buffering: no',
      'Transfer-Encoding: chunked',
    ]
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
    // One write (one packet, with Nagle off) for the head and the first chunk.
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), retryChunk]))
  }

  function scheduleEnd(client: SseClient, exp: number | undefined): void {
    const jitter = 1 - config.SSE_LIFETIME_JITTER * Math.random()
    const lifetimeAt = Date.now() + config.SSE_MAX_LIFETIME_MS * jitter
    const expiresAt = exp === undefined ? Number.POSITIVE_INFINITY : exp * 1000
    // Expired tokens are not renewed in-band: the stream ends at `exp` with `event: token-expired`;
    // a reconnect with the old token gets 401, so the client must fetch a new token.
    if (expiresAt <= lifetimeAt) client.closeAt(expiresAt, 'token-expired', TOKEN_EXPIRED_CHUNK)
    else client.closeAt(lifetimeAt, 'lifetime')
  }

  async function startPosition(request: StreamRequest): Promise<Position> {
    if (request.resume) return request.resume
    const offsets = await consumer.admin().fetchTopicOffsetsByTimestamp(config.ALERTS_TOPIC, request.since!)
    const position: number[] = []
    for (const { partition, offset } of offsets) position[partition] = Number(offset)
    return position
  }

  /**
   * Clamps a position into what Kafka still holds. A partition behind the log start (retention)
   * or beyond its end (topic re-created) restarts at the log start: that is the documented
   * restart point of `event: reset`.
   */
  async function clampToRetention(from: Position, partitions: number) {
    const offsets = await consumer.admin().fetchTopicOffsets(config.ALERTS_TOPIC)
    const start: number[] = []
    let reset = from.length > Math.max(partitions, offsets.length)
    for (const { partition, low, high } of offsets) {
      const offset = from[partition] ?? Number(low)
      const inRange = offset >= Number(low) && offset <= Number(high)
      start[partition] = inRange ? offset : Number(low)
      if (!inRange) reset = true
    }
    return { start, reset }
  }

  async function catchUp(client: SseClient, request: StreamRequest, live: Position): Promise<void> {
    const from = await startPosition(request)
    if (client.closed) return
    const behindLive = from.length <= live.length && from.every((offset, p) => offset <= (live[p] ?? 0))
    if (behindLive && window.covers(from)) {
      // Ids are the client's own position: `from` advanced by each replayed alert. That is the
      // shared frame's id when the token came from this process's stream; after a restart or
      // from another replica the consumption order differs and the id is re-encoded.
      const current = [...from]
      const frames: Buffer[] = []
      for (const entry of window.after(from)) {
        if (entry.offset >= (live[entry.partition] ?? 0)) continue
        current[entry.partition] = entry.offset + 1
        const frame = client.reader.frameAt(entry, current)
        if (frame) frames.push(frame)
      }
      if (frames.length > 0) {
        client.write(httpChunk(Buffer.concat(frames)), frames.length)
        metrics.eventsSent.inc(frames.length)
      }
      metrics.replays.inc({ source: 'memory' })
      broadcaster.goLive(client, live)
      return
    }

    const { start, reset } = await clampToRetention(from, live.length)
    if (client.closed) return
    if (reset) {
      const token = encodeResumeToken(start)
      const data = JSON.stringify({ reason: 'position-not-retained', restartFrom: token })
      client.write(httpChunk(sseEvent('reset', data, token)), 1)
    }
    const position = [...start]
    const needsKafka = live.some((end, p) => (position[p] ?? 0) < end)
    if (needsKafka) {
      metrics.replays.inc({ source: 'kafka' })
      const release = await kafkaReplays.acquire()
      try {
        if (client.closed) return
        const ok = await replayFromKafka({
          kafka: deps.kafka,
          topic: config.ALERTS_TOPIC,
          groupPrefix: config.ALERTS_GROUP_PREFIX,
          from: position,
          to: live,
          timeoutMs: config.SSE_REPLAY_TIMEOUT_MS,
          logger,
          onAlert: async (partition, offset, alert) => {
            position[partition] = offset + 1
            const visible = client.reader.view(alert, filterKeys(alert))
            if (visible === null) return !client.closed
            await client.writeAndWait(httpChunk(alertFrame(encodeResumeToken(position), visible)))
            metrics.eventsSent.inc()
            return !client.closed
          },
        })
        if (!ok) {
          client.end('replay-failed')
          return
        }
      } finally {
        release()
      }
    } else metrics.replays.inc({ source: 'none' })

    // The client now holds everything before max(start, live). If it came from a replica that was
    // ahead of this one, wait until the live stream gets there before switching over.
    const target = live.map((end, p) => Math.max(end, position[p] ?? 0))
    for (let p = live.length; p < position.length; p++) target[p] = position[p]!
    if (!(await consumer.waitFor(target, config.SSE_REPLAY_TIMEOUT_MS))) {
      client.end('replay-failed')
      return
    }
    broadcaster.goLive(client, target)
  }

  return function open(socket: Socket, request: StreamRequest): void {
    socket.setNoDelay(true)
    socket.setTimeout(0)
    socket.setKeepAlive(true, 60_000)
    // Registered first, so that anything thrown below still releases the slot when the socket
    // is destroyed; a new client only holds alerts until it goes live, so nothing is written
    // before the head.
    const client = broadcaster.connect(socket, request.reader)
    // Same tick as connect: every alert after `live` reaches the client through the broadcaster.
    const live = consumer.position()
    writeHead(socket, request.headers)
    scheduleEnd(client, request.exp)
    if (!request.resume && request.since === undefined) {
      broadcaster.goLive(client, live)
      return
    }
    catchUp(client, request, live).catch((err: unknown) => {
      logger.warn({ err }, 'SSE catch-up failed')
      client.end('replay-failed')
    })
  }
}
