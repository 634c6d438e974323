import type { Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { createAlertEntry } from './alert-entry.js'
import type { AlertsConsumer } from './alerts-consumer.js'
import type { AlertsMetrics } from './alerts-metrics.js'
import { replayFromKafka } from './alerts-replay.js'
import type { AlertsWindow } from './alerts-window.js'
import type { AlertsConfig } from './config.js'
import { decodeResumeToken, type Position } from './resume-token.js'
import { createSemaphore } from './semaphore.js'
import { parseSince } from './since.js'
import type { SseBroadcaster } from './sse-broadcaster.js'
import type { SseClient } from './sse-client.js'
import { resetFrame } from './sse-frames.js'

/** Where a stream starts: after a resume position (Last-Event-ID), at a time, or live only (neither). */
export interface StreamStart {
  resume?: Position
  since?: number
}

/**
 * `lastEventId` wins over `since` (a reconnecting EventSource keeps its URL, `since=` included).
 * Throws `InvalidResumeTokenError` (400) for an id this stream never sent.
 */
export function streamStart(lastEventId: string | undefined, since: string | undefined): StreamStart {
  if (lastEventId) return { resume: decodeResumeToken(lastEventId) }
  const ms = since ? parseSince(since) : null
  return ms === null ? {} : { since: ms }
}

export interface CatchUpDeps {
  kafka: Kafka
  config: AlertsConfig
  consumer: Pick<AlertsConsumer, 'offsetsForTime' | 'retainedOffsets' | 'waitFor'>
  window: AlertsWindow
  broadcaster: Pick<SseBroadcaster, 'goLive'>
  metrics: AlertsMetrics
  logger: Logger
}

/**
 * Brings a client that starts in the past up to `live` (the consumer position when it connected;
 * from then on it holds live alerts), then makes it live. The missed alerts come from the
 * in-memory window when it still holds them all, else from Kafka (a few replays at a time).
 *
 * An alert the reader does not get (filtered out, or not theirs to see) still moves their
 * position: ids sent after it are past it, so a resume never reads it again, and one sent before
 * it resumes where it is examined (and skipped) again. No gap, no duplicate, whatever the filter.
 */
export function createCatchUp(deps: CatchUpDeps) {
  const { config, consumer, window, broadcaster, metrics, logger } = deps
  const kafkaReplays = createSemaphore(config.SSE_MAX_KAFKA_REPLAYS)

  /**
   * Clamps a position into what Kafka still holds. A partition behind the log start (retention)
   * or beyond its end (topic re-created) restarts at the log start: that is the documented
   * restart point of `event: reset`.
   */
  async function clampToRetention(from: Position, partitions: number) {
    const { earliest, latest } = await consumer.retainedOffsets()
    const start: number[] = []
    let reset = from.length > Math.max(partitions, latest.length)
    latest.forEach((high, partition) => {
      const low = earliest[partition] ?? 0
      const offset = from[partition] ?? low
      const inRange = offset >= low && offset <= high
      start[partition] = inRange ? offset : low
      if (!inRange) reset = true
    })
    return { start, reset }
  }

  /** Replays [position, live) from Kafka, advancing `position`; false when it could not finish. */
  async function replay(client: SseClient, position: number[], live: Position): Promise<boolean> {
    const release = await kafkaReplays.acquire()
    try {
      if (client.closed) return true
      return await replayFromKafka({
        kafka: deps.kafka,
        topic: config.ALERTS_TOPIC,
        groupPrefix: config.ALERTS_GROUP_PREFIX,
        from: position,
        to: live,
        timeoutMs: config.SSE_REPLAY_TIMEOUT_MS,
        logger,
        onAlert: async (partition, offset, alert) => {
          const frames = client.reader.framesFrom([createAlertEntry(partition, offset, alert, [])], position)
          if (frames.length > 0) {
            await client.sendAndWait(frames)
            metrics.eventsSent.inc()
          }
          return !client.closed
        },
      })
    } finally {
      release()
    }
  }

  return async function catchUp(client: SseClient, start: StreamStart, live: Position): Promise<void> {
    const from = start.resume ?? (await consumer.offsetsForTime(start.since!))
    if (client.closed) return
    const behindLive = from.length <= live.length && from.every((offset, p) => offset <= (live[p] ?? 0))
    if (behindLive && window.covers(from)) {
      // Ids are the client's own position: `from` advanced by each replayed alert. That is the
      // shared frame's id when the token came from this process's stream; after a restart or
      // from another replica the consumption order differs and the id is re-encoded.
      const missed = window.after(from).filter((entry) => entry.offset < (live[entry.partition] ?? 0))
      const frames = client.reader.framesFrom(missed, [...from])
      if (frames.length > 0) {
        client.send(frames)
        metrics.eventsSent.inc(frames.length)
      }
      metrics.replays.inc({ source: 'memory' })
      broadcaster.goLive(client, live)
      return
    }

    const { start: retained, reset } = await clampToRetention(from, live.length)
    if (client.closed) return
    if (reset) client.send([resetFrame(retained)])
    const position = [...retained]
    if (live.some((end, p) => (position[p] ?? 0) < end)) {
      metrics.replays.inc({ source: 'kafka' })
      const ok = await replay(client, position, live)
      if (client.closed) return
      if (!ok) {
        client.end('replay-failed')
        return
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
}
