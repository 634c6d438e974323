import { ensureTopics, retry } from '@intellisite/common'
import type { Consumer, Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { type AlertEntry, createAlertEntry, parseAlert } from './alert-entry.js'
import type { AlertsWindow } from './alerts-window.js'
import type { Position } from './resume-token.js'

export interface AlertsConsumerOptions {
  kafka: Kafka
  topic: string
  /** Unique per process, see below. */
  groupId: string
  partitions: number
  replicationFactor: number
  /** How many recent alerts to read back into the window at start (spread over partitions). */
  backfill: number
  backfillTimeoutMs: number
  window: AlertsWindow
  onEntries(entries: readonly AlertEntry[]): void
  logger: Logger
}

export interface AlertsConsumer {
  start(): Promise<void>
  ready(): boolean
  /** Started and caught up with the topic as it was at start: fresh clients get only new alerts. */
  started(): boolean
  /** Next offset to read per partition: the live stream's position right now. */
  position(): Position
  /** Alerts on the topic not yet read by this process. */
  lag(): number
  /** Resolves once the live position is at or past `target` on every partition. */
  waitFor(target: Position, timeoutMs: number): Promise<boolean>
  /** Per partition, the offset of the first alert published at or after `timestamp` (epoch ms). */
  offsetsForTime(timestamp: number): Promise<Position>
  /** Per partition, the first offset the topic still holds and the next one to be written. */
  retainedOffsets(): Promise<{ earliest: Position; latest: Position }>
  close(): Promise<void>
}

/**
 * The one Kafka consumer of an API process. kafkajs has no `assign()`, so every process joins a
 * consumer group of its own (a unique id, one member → it owns every partition): each replica
 * reads every alert, and nothing is shared with the indexer's group. It never commits: where it
 * stands lives in memory (and in every client's resume token). On start it seeks to the last
 * `backfill` records of each partition and catches up before serving, so the window can answer
 * the resumes that follow a restart. If
 * kafkajs rejoins (broker outage, rebalance) it seeks back to the in-memory position, and any
 * record below that position is ignored, so no alert is published twice. Reading is
 * read_committed (kafkajs's default): alerts are written in the indexer's transactions, so
 * aborted ones never reach a client.
 */
/** Right after a topic is created its leaders may not be known yet ("not the leader"). */
export function createAlertsConsumer(options: AlertsConsumerOptions): AlertsConsumer {
  const { kafka, topic, window, logger } = options
  const admin = kafka.admin()
  let consumer: Consumer | undefined
  const position: number[] = []
  const highWatermarks: number[] = []
  let joined = false
  let running = false
  let caughtUp = false
  let waiters: { target: Position; resolve: (ok: boolean) => void }[] = []

  const reached = (target: Position) =>
    target.every((offset, partition) => (position[partition] ?? 0) >= offset)
  const advance = (partition: number, next: number) => {
    if (next <= (position[partition] ?? 0)) return
    position[partition] = next
    if (waiters.length > 0) {
      const still: typeof waiters = []
      for (const waiter of waiters) {
        if (reached(waiter.target)) waiter.resolve(true)
        else still.push(waiter)
      }
      waiters = still
    }
  }
  function waitFor(target: Position, timeoutMs: number): Promise<boolean> {
    if (reached(target)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const waiter = { target, resolve }
      waiters.push(waiter)
      setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter)
        resolve(false)
      }, timeoutMs).unref()
    })
  }
  const ensurePartition = (partition: number) => {
    // A partition added while running is read from its beginning (fromBeginning below).
    if (position[partition] === undefined) {
      position[partition] = 0
      window.startPartition(partition, 0)
    }
  }
  const seekAll = () => {
    if (!consumer) return
    for (let partition = 0; partition < position.length; partition++) {
      consumer.seek({ topic, partition, offset: String(position[partition] ?? 0) })
    }
  }

  return {
    async start() {
      await admin.connect()
      // The API may start before the indexer, which otherwise creates it.
      await ensureTopics(
        admin,
        [{ topic, numPartitions: options.partitions, replicationFactor: options.replicationFactor }],
        logger,
      )
      const offsets = await retry(() => admin.fetchTopicOffsets(topic), {
        initialMs: 50,
        maxMs: 1_000,
        attempts: 20,
      })
      // Read back the most recent alerts into the window before serving anyone: after a restart
      // or a deploy, every client resumes at once, and from memory that costs nothing.
      const backfill = Math.ceil(options.backfill / Math.max(1, offsets.length))
      const end: number[] = []
      for (const { partition, low, high } of offsets) {
        const start = Math.max(Number(low), Number(high) - backfill)
        position[partition] = start
        highWatermarks[partition] = Number(high)
        end[partition] = Number(high)
        window.startPartition(partition, start)
      }
      const c = kafka.consumer({
        groupId: options.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: 1_000,
        // The group has one member (this process). After a broker crash the restarted broker
        // reloads our old membership and a rejoin waits for its session to expire: a short
        // session keeps that wait short (30 s default). Heartbeats go out between batches, and
        // handling a batch only fans it out, so 10 s is ample.
        sessionTimeout: 10_000,
        heartbeatInterval: 3_000,
        retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 5_000 },
      })
      consumer = c
      c.on(c.events.GROUP_JOIN, () => {
        joined = true
        if (running) seekAll()
      })
      c.on(c.events.CRASH, ({ payload }) => {
        joined = false
        logger.error({ err: payload.error, restart: payload.restart }, 'alerts consumer crashed')
      })
      c.on(c.events.DISCONNECT, () => {
        joined = false
      })
      // Batches holding only transaction markers produce no message; the position still moves.
      c.on(c.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.topic !== topic) return
        ensurePartition(payload.partition)
        advance(payload.partition, Number(payload.lastOffset) + 1)
      })
      await c.connect()
      await c.subscribe({ topic, fromBeginning: true })
      await c.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const partition = batch.partition
          ensurePartition(partition)
          highWatermarks[partition] = Number(batch.highWatermark)
          const entries: AlertEntry[] = []
          for (const message of batch.messages) {
            const offset = Number(message.offset)
            if (offset < position[partition]!) continue
            advance(partition, offset + 1)
            const alert = parseAlert(message.value)
            if (!alert) {
              logger.warn({ partition, offset }, 'invalid alert skipped')
              continue
            }
            // Transactions make alerts exactly-once; this is a cheap second line of defence.
            if (window.has(alert.id)) {
              logger.warn({ partition, offset, alertId: alert.id }, 'duplicate alert id skipped')
              continue
            }
            const entry = createAlertEntry(partition, offset, alert, [...position])
            window.push(entry)
            entries.push(entry)
          }
          options.onEntries(entries)
        },
      })
      running = true
      // run() also resolves when the first join failed: kafkajs then crashes the consumer, drops
      // its group and schedules a restart. There is no group to seek yet (seek would throw); the
      // GROUP_JOIN of that restart seeks instead.
      if (joined) seekAll()
      if (!(await waitFor(end, options.backfillTimeoutMs))) {
        logger.warn({ position, end }, 'alerts backfill incomplete; serving anyway')
      }
      caughtUp = true
      logger.info(
        { topic, groupId: options.groupId, position, window: window.size },
        'alerts consumer started',
      )
    },
    ready: () => running && joined,
    started: () => running && caughtUp,
    position: () => [...position],
    lag() {
      let lag = 0
      highWatermarks.forEach((high, partition) => {
        lag += Math.max(0, high - (position[partition] ?? 0))
      })
      return lag
    },
    waitFor,
    async offsetsForTime(timestamp) {
      const position: number[] = []
      for (const { partition, offset } of await admin.fetchTopicOffsetsByTimestamp(topic, timestamp)) {
        position[partition] = Number(offset)
      }
      return position
    },
    async retainedOffsets() {
      const earliest: number[] = []
      const latest: number[] = []
      for (const { partition, low, high } of await admin.fetchTopicOffsets(topic)) {
        earliest[partition] = Number(low)
        latest[partition] = Number(high)
      }
      return { earliest, latest }
    },
    async close() {
      running = false
      joined = false
      for (const waiter of waiters) waiter.resolve(false)
      waiters = []
      await consumer?.disconnect()
      // The group never committed anything; remove it so replicas leave no trace on the broker.
      await admin.deleteGroups([options.groupId]).catch(() => undefined)
      await admin.disconnect()
    },
  }
}
